package jetstream_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bpfchan/bpfchan/maps"
	"github.com/bpfchan/bpfchan/pump"

	bj "github.com/bpfchan/bpfchan/jetstream"
	"github.com/bpfchan/bpfchan/jetstream/internal/ringprod"
)

// exampleServer starts an embedded JetStream server (as the tests do) on a
// fresh store directory and returns a connection to it and a function that
// stops both and removes the store.
func exampleServer() (*nats.Conn, jetstream.JetStream, func()) {
	dir, err := os.MkdirTemp("", "bpfchan-jetstream-example")
	if err != nil {
		log.Fatal(err)
	}
	s, err := server.NewServer(&server.Options{JetStream: true, StoreDir: dir, DontListen: true, NoSigs: true, NoLog: true})
	if err != nil {
		log.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		log.Fatal("server not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(s))
	if err != nil {
		log.Fatal(err)
	}
	j, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	return nc, j, func() { nc.Close(); s.Shutdown(); s.WaitForShutdown(); os.RemoveAll(dir) }
}

// Values sent on a Publisher's channel reach the stream; a Consumer of the
// stream delivers them as records to acknowledge.
func ExampleNewPublisher() {
	type sample struct{ CPU, Load uint32 }
	ctx := context.Background()
	_, j, stop := exampleServer()
	defer stop()
	if _, err := j.CreateStream(ctx, jetstream.StreamConfig{Name: "LOAD", Subjects: []string{"load.>"}}); err != nil {
		log.Fatal(err)
	}

	p, err := bj.NewPublisher[sample](ctx, j, "load.node1", bj.WithNode("node1"))
	if err != nil {
		log.Fatal(err)
	}
	for cpu := range uint32(3) {
		p.C() <- sample{CPU: cpu, Load: 10 * cpu}
	}
	if err := p.Close(); err != nil { // waits for every PubAck
		log.Fatal(err)
	}
	fmt.Printf("published %d, acknowledged %d\n", p.Stats().Received, p.Stats().Delivered)

	c, err := j.CreateConsumer(ctx, "LOAD", jetstream.ConsumerConfig{Durable: "reader"})
	if err != nil {
		log.Fatal(err)
	}
	k, err := bj.NewConsumer[sample](ctx, c)
	if err != nil {
		log.Fatal(err)
	}
	for range 3 {
		m := <-k.C()
		fmt.Printf("%s from %s: cpu %d load %d\n", m.Subject, m.Node, m.Value.CPU, m.Value.Load)
		if err := m.Ack(); err != nil {
			log.Fatal(err)
		}
	}
	if err := k.Close(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// published 3, acknowledged 3
	// load.node1 from node1: cpu 0 load 0
	// load.node1 from node1: cpu 1 load 10
	// load.node1 from node1: cpu 2 load 20
}

// The records a BPF program writes into a ring buffer reach a stream, each
// exactly once: the ring is acknowledged only once the stream holds them.
// (Here a test producer stands in for the program, which would normally
// be attached to a kernel hook and the ring pinned, so that a restarted
// agent resumes where the last one stopped.)
func ExampleForward() {
	type event struct{ Seq, PID uint64 }
	ctx := context.Background()
	_, j, stop := exampleServer()
	defer stop()
	st, err := j.CreateStream(ctx, bj.ForwardStream("EVENTS", "events.>"))
	if err != nil {
		log.Fatal(err)
	}
	ring, err := maps.NewRingBuf(1<<16, maps.WithName("events"))
	if err != nil {
		log.Fatal(err)
	}
	defer ring.Close()
	prog, err := ringprod.New(ring, 16) // writes {Seq: 0, 1, 2...}
	if err != nil {
		log.Fatal(err)
	}
	defer prog.Close()

	src, err := pump.RingBufAcked[event](ctx, ring)
	if err != nil {
		log.Fatal(err)
	}
	f, err := bj.Forward(ctx, src, j, "events.node1", bj.WithNode("node1"))
	if err != nil {
		src.Close() // Forward owns src only once it returns no error
		log.Fatal(err)
	}
	if err := prog.Run(3); err != nil {
		log.Fatal(err)
	}
	if err := f.Flush(ctx); err != nil { // the 3 records are in the stream and the ring acknowledged
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s from %s, Pos %s\n", m.Subject, m.Header.Get(bj.HeaderNode), m.Header.Get(bj.HeaderPos))
	}
	fmt.Printf("%+v\n", f.Stats())
	// Output:
	// events.node1 from node1, Pos 0
	// events.node1 from node1, Pos 24
	// events.node1 from node1, Pos 48
	// {Received:3 Delivered:3 Dropped:0 DecodeErrors:0 Retries:0 Duplicates:0 Acked:3 Skipped:0 Deleted:0}
}

// A KV bucket of blocked command names, put with the nats CLI
// (`nats kv put blocked curl 1`), mirrored into a BPF hash map a program
// consults: the keys are plain names, so WithKeyDecoder reads them.
func ExampleNewMirror() {
	ctx := context.Background()
	_, j, stop := exampleServer()
	defer stop()
	kv, err := j.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "blocked"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := kv.Put(ctx, "curl", []byte{1}); err != nil {
		log.Fatal(err)
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "blocked", Type: ebpf.Hash, KeySize: 16, ValueSize: 1, MaxEntries: 1024})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	comm := func(name string) (c [16]byte, err error) {
		if len(name) >= len(c) {
			return c, fmt.Errorf("command name %q too long", name)
		}
		copy(c[:], name)
		return c, nil
	}
	mi, err := bj.NewMirror[[16]byte, uint8](ctx, kv, m, bj.WithKeyDecoder(comm))
	if err != nil {
		log.Fatal(err)
	}
	defer mi.Close()
	<-mi.Synced()
	k, _ := comm("curl")
	var blocked uint8
	if err := m.Lookup(k, &blocked); err != nil {
		log.Fatal(err)
	}
	fmt.Println("curl blocked:", blocked == 1)
	// Output: curl blocked: true
}
