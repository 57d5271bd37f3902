package pump_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/producer"
	"github.com/bpfchan/bpfchan/pump"
)

// The examples drive real BPF programs from this module's internal
// producer package (it stands in for your own BPF program, which you cannot
// import from here): each Run executes the program in the kernel that many
// times, writing into the map.

// must stops the example on an error.
func must[T any](v T, err error) T {
	check(err)
	return v
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

// event is what the example producers write: a sequence number, then
// padding.
type event struct {
	Seq uint64
	Pad [8]byte
}

func mustMap(spec *ebpf.MapSpec) *ebpf.Map {
	m, err := ebpf.NewMap(spec)
	if err != nil {
		log.Fatal(err)
	}
	return m
}

func ExampleRingBuf() {
	rb := mustMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 1 << 16})
	defer rb.Close()
	src, err := pump.RingBuf[event](context.Background(), rb)
	if err != nil {
		log.Fatal(err)
	}
	prod := must(producer.NewRing(rb, 16)) // a BPF program writing 16-byte records
	defer prod.Close()
	check(prod.Run(3))

	for range 3 {
		ev := <-src.C()
		fmt.Println("event", ev.Seq)
	}
	fmt.Println(src.Close())
	// Output:
	// event 0
	// event 1
	// event 2
	// <nil>
}

func ExampleRingBufBatches() {
	rb := mustMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 1 << 16})
	defer rb.Close()
	src, err := pump.RingBufBatches[event](context.Background(), rb, pump.WithBatch(64, time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	prod := must(producer.NewRing(rb, 16))
	defer prod.Close()
	check(prod.Run(100))

	// Close delivers what the ring holds, then closes C().
	go src.Close()
	total := 0
	for batch := range src.C() {
		total += len(batch)
		src.Recycle(batch) // optional: lets the pump reuse the batch's memory
	}
	fmt.Println(total, src.Wait())
	// Output: 100 <nil>
}

func ExamplePerf() {
	arr := mustMap(&ebpf.MapSpec{Type: ebpf.PerfEventArray})
	defer arr.Close()
	src, err := pump.Perf[event](context.Background(), arr, pump.WithPerfBuffer(64<<10))
	if err != nil {
		log.Fatal(err)
	}
	prod := must(producer.NewPerf(arr, 16))
	defer prod.Close()
	check(prod.Run(2))
	fmt.Println((<-src.C()).Seq, (<-src.C()).Seq)
	src.Close()
	fmt.Println("lost:", src.Stats().LostSamples)
	// Output:
	// 0 1
	// lost: 0
}

func ExampleQueue() {
	q := mustMap(&ebpf.MapSpec{Type: ebpf.Queue, ValueSize: 8, MaxEntries: 16})
	defer q.Close()
	prod := must(producer.NewPush(q)) // pushes 0, 1, 2...
	defer prod.Close()
	check(prod.Run(3))
	src, err := pump.Queue[uint64](context.Background(), q, pump.WithPoll(100*time.Microsecond, 10*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-src.C(), <-src.C(), <-src.C())
	src.Close()
	// Output: 0 1 2
}

func ExampleStack() {
	s := mustMap(&ebpf.MapSpec{Type: ebpf.Stack, ValueSize: 8, MaxEntries: 16})
	defer s.Close()
	prod := must(producer.NewPush(s))
	defer prod.Close()
	check(prod.Run(3))
	src, err := pump.Stack[uint64](context.Background(), s)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-src.C(), <-src.C(), <-src.C())
	src.Close()
	// Output: 2 1 0
}

func ExampleQueueWriter() {
	q := mustMap(&ebpf.MapSpec{Type: ebpf.Queue, ValueSize: 8, MaxEntries: 2})
	defer q.Close()
	w, err := pump.QueueWriter[uint64](context.Background(), q, pump.WithFull(pump.FullDrop))
	if err != nil {
		log.Fatal(err)
	}
	for _, v := range []uint64{10, 20, 30} {
		w.C() <- v
	}
	close(w.C()) // no more; Wait returns once every value is pushed
	fmt.Println(w.Wait())
	var front uint64
	if err := q.Lookup(nil, &front); err != nil { // peek at the queue's front
		log.Fatal(err)
	}
	st := w.Stats()
	fmt.Println(front, st.Delivered, st.Dropped)
	// Output:
	// <nil>
	// 10 2 1
}

func ExampleStackWriter() {
	s := mustMap(&ebpf.MapSpec{Type: ebpf.Stack, ValueSize: 8, MaxEntries: 8})
	defer s.Close()
	w, err := pump.StackWriter[uint64](context.Background(), s)
	if err != nil {
		log.Fatal(err)
	}
	w.C() <- 1
	w.C() <- 2
	fmt.Println(w.Close()) // pushes what was sent, without closing C()
	var top uint64
	if err := s.Lookup(nil, &top); err != nil { // peek at the stack's top
		log.Fatal(err)
	}
	fmt.Println(top)
	// Output:
	// <nil>
	// 2
}

func ExampleQueueChannel() {
	q := mustMap(&ebpf.MapSpec{Type: ebpf.Queue, ValueSize: 8, MaxEntries: 8})
	defer q.Close()
	ch, err := pump.QueueChannel[uint64](context.Background(), q)
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		for i := range uint64(3) {
			ch.In() <- i
		}
	}()
	fmt.Println(<-ch.Out(), <-ch.Out(), <-ch.Out())
	fmt.Println(ch.Close())
	// Output:
	// 0 1 2
	// <nil>
}

func ExampleStackChannel() {
	s := mustMap(&ebpf.MapSpec{Type: ebpf.Stack, ValueSize: 8, MaxEntries: 8})
	defer s.Close()
	prod := must(producer.NewPush(s)) // 0, 1, 2 already in the stack
	defer prod.Close()
	check(prod.Run(3))
	ch, err := pump.StackChannel[uint64](context.Background(), s)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-ch.Out(), <-ch.Out(), <-ch.Out())
	ch.In() <- 42
	fmt.Println(<-ch.Out())
	ch.Close()
	// Output:
	// 2 1 0
	// 42
}

// One select waits on a ring buffer, a queue, a ticker and ctx at once.
func Example_select() {
	rb := mustMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 1 << 16})
	defer rb.Close()
	q := mustMap(&ebpf.MapSpec{Type: ebpf.Queue, ValueSize: 8, MaxEntries: 16})
	defer q.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	events, err := pump.RingBuf[event](ctx, rb)
	if err != nil {
		log.Fatal(err)
	}
	jobs, err := pump.Queue[uint64](ctx, q)
	if err != nil {
		log.Fatal(err)
	}
	ringProd := must(producer.NewRing(rb, 16))
	defer ringProd.Close()
	queueProd := must(producer.NewPush(q))
	defer queueProd.Close()
	check(ringProd.Run(2))
	check(queueProd.Run(2))

	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	var nEvents, nJobs int
	for nEvents+nJobs < 4 {
		select {
		case <-events.C():
			nEvents++
		case <-jobs.C():
			nJobs++
		case <-tick.C:
			fmt.Println("still waiting")
		case <-ctx.Done():
			return
		}
	}
	cancel()
	fmt.Println(nEvents, "events,", nJobs, "jobs;", events.Wait(), jobs.Wait())
	// Output: 2 events, 2 jobs; context canceled context canceled
}

func ExampleRingBufAcked() {
	rb := mustMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 1 << 16}) // pin it to survive a crash
	defer rb.Close()
	prod := must(producer.NewRing(rb, 16))
	defer prod.Close()
	check(prod.Run(3))

	src := must(pump.RingBufAcked[event](context.Background(), rb))
	batch := <-src.C()
	for _, r := range batch {
		fmt.Println("event", r.Value.Seq) // forward it somewhere durable, then:
	}
	check(src.Ack(batch[1].Pos)) // the first two leave the ring; the third stays
	check(src.Close())

	again := must(pump.RingBufAcked[event](context.Background(), rb)) // a new reader, maybe another process
	redelivered := <-again.C()
	fmt.Println("again", redelivered[0].Value.Seq, "at the same Pos:", redelivered[0].Pos == batch[2].Pos)
	check(again.Close())
	// Output:
	// event 0
	// event 1
	// event 2
	// again 2 at the same Pos: true
}

func ExamplePerfSamples() {
	pa := mustMap(&ebpf.MapSpec{Type: ebpf.PerfEventArray})
	defer pa.Close()
	src := must(pump.PerfSamples[event](context.Background(), pa))
	prod := must(producer.NewPerf(pa, 16))
	defer prod.Close()
	check(prod.Run(1))
	s := <-src.C()
	fmt.Println("event", s.Value.Seq, "written on a CPU:", s.CPU >= 0)
	check(src.Close())
	// Output: event 0 written on a CPU: true
}
