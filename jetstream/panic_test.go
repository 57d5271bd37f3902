package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bpfchan/bpfchan/maps"
	"github.com/bpfchan/bpfchan/pump"

	bj "github.com/bpfchan/bpfchan/jetstream"
	"github.com/bpfchan/bpfchan/jetstream/internal/natstest"
	"github.com/bpfchan/bpfchan/jetstream/internal/ringprod"
	"github.com/bpfchan/bpfchan/jetstream/internal/testenv"
)

// touchy is a value whose own binary methods panic on some input, as
// hand-written ones do on short or unexpected bytes: MarshalBinary on a
// zero value, UnmarshalBinary on an empty slice.
type touchy struct{ b byte }

func (v touchy) MarshalBinary() ([]byte, error) {
	if v.b == 0 {
		panic("touchy: zero")
	}
	return []byte{v.b}, nil
}

func (v *touchy) UnmarshalBinary(b []byte) error {
	v.b = b[0]
	return nil
}

// The children of TestPanicsOnData: this test binary run again with
// panicChildEnv naming the handle and panicURLEnv the server.
const (
	panicChildEnv = "BPFCHAN_PANIC_CHILD"
	panicURLEnv   = "BPFCHAN_PANIC_URL"
)

// TestPanicsOnData: T's own MarshalBinary and UnmarshalBinary panic on
// some values. No handle lets that panic kill the process: a Consumer and
// a Mirror (data from the network, which a fleet shares) count it as a
// decode error and go on, the Consumer terminating the message; a
// Publisher and a Forwarder (values of the local program) stop with an
// error matching ErrPanic, the Forwarder leaving the record in the ring.
// Each handle runs in a child process, so that a panic that escapes fails
// one case instead of the test binary.
func TestPanicsOnData(t *testing.T) {
	testenv.RequireBPF(t) // the mirror's map and the forwarder's ring
	l := natstest.StartLoopback(t)
	_, j := l.Connect()
	createStream(t, j)
	if _, err := j.Publish(t.Context(), "ev.in", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Publish(t.Context(), "ev.in", []byte{7}); err != nil {
		t.Fatal(err)
	}
	if _, err := j.CreateConsumer(t.Context(), "EV", jetstream.ConsumerConfig{Durable: "reader", FilterSubject: "ev.in", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	kv := newBucket(t, j, "panic")
	put(t, kv, key(1), nil)
	put(t, kv, key(2), []byte{7})
	for _, mode := range []string{"consumer", "mirror", "publisher", "forward"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0])
			cmd.Env = append(os.Environ(), panicChildEnv+"="+mode, panicURLEnv+"="+l.URL())
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.HasPrefix(string(out), "ok:") {
				t.Errorf("%s child: got %v, want it to survive; it said:\n%s", mode, err, firstLines(string(out), 8))
				return
			}
			t.Logf("%s child: %s", mode, strings.TrimSpace(string(out)))
		})
	}
}

// firstLines returns the first n lines of s.
func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// panicChild runs one handle over touchy values and says how it took
// them: "ok: ..." and 0 when it behaved as TestPanicsOnData wants.
func panicChild(mode string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, err := nats.Connect(os.Getenv(panicURLEnv))
	if err != nil {
		fmt.Println("child:", err)
		return 1
	}
	defer nc.Close()
	j, err := jetstream.New(nc)
	if err != nil {
		fmt.Println("child:", err)
		return 1
	}
	if err := panicRun(ctx, mode, j); err != nil {
		fmt.Println("child:", err)
		return 1
	}
	return 0
}

func panicRun(ctx context.Context, mode string, j jetstream.JetStream) error {
	switch mode {
	case "consumer":
		// The stream holds an empty message, then one holding 7.
		c, err := j.Consumer(ctx, "EV", "reader")
		if err != nil {
			return err
		}
		k, err := bj.NewConsumer[touchy](ctx, c)
		if err != nil {
			return err
		}
		m, ok := <-k.C()
		if !ok {
			return fmt.Errorf("C() closed: %v", k.Wait())
		}
		if err := m.AckSync(ctx); err != nil {
			return err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return err
		}
		go func() {
			for range k.C() {
			}
		}()
		if err := k.Close(); err != nil {
			return err
		}
		if st := k.Stats(); m.Value.b != 7 || st.DecodeErrors != 1 || info.NumAckPending != 0 || info.AckFloor.Stream != 2 {
			return fmt.Errorf("got value %d, stats %+v, %d acks pending, ack floor %d; want 7, 1 decode error, the first message terminated",
				m.Value.b, st, info.NumAckPending, info.AckFloor.Stream)
		}
		fmt.Println("ok: the empty message counted and terminated, the next one delivered")
	case "mirror":
		// The bucket holds key 1 with an empty value, key 2 with 7.
		kv, err := j.KeyValue(ctx, "panic")
		if err != nil {
			return err
		}
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 1, MaxEntries: 4})
		if err != nil {
			return err
		}
		defer m.Close()
		if err := m.Put(uint32(1), uint8(1)); err != nil {
			return err
		}
		mi, err := bj.NewMirror[uint32, touchy](ctx, kv, m)
		if err != nil {
			return err
		}
		select {
		case <-mi.Synced():
		case <-mi.Done():
			return fmt.Errorf("the mirror stopped: %v", mi.Wait())
		}
		if err := mi.Close(); err != nil {
			return err
		}
		var v1, v2 uint8
		err1, err2 := m.Lookup(uint32(1), &v1), m.Lookup(uint32(2), &v2)
		if st := mi.Stats(); !errors.Is(err1, ebpf.ErrKeyNotExist) || err2 != nil || v2 != 7 || st.DecodeErrors != 1 {
			return fmt.Errorf("got key 1: %v, key 2: %d (%v), stats %+v; want key 1 absent, key 2 7, 1 decode error", err1, v2, err2, st)
		}
		fmt.Println("ok: the empty value counted, its key absent, the other key mirrored")
	case "publisher":
		p, err := bj.NewPublisher[touchy](ctx, j, "ev.pub")
		if err != nil {
			return err
		}
		select {
		case p.C() <- touchy{}:
		case <-p.Done():
		}
		err = p.Close()
		if st := p.Stats(); !errors.Is(err, bj.ErrPanic) || st.DecodeErrors != 1 {
			return fmt.Errorf("got %v, stats %+v; want ErrPanic, 1 decode error", err, st)
		}
		fmt.Println("ok: stopped with", err)
	case "forward":
		// Record 0 decodes to touchy{0}, whose MarshalBinary panics.
		rb, err := maps.NewRingBuf(1 << 16)
		if err != nil {
			return err
		}
		defer rb.Close()
		prod, err := ringprod.New(rb, 16)
		if err != nil {
			return err
		}
		defer prod.Close()
		if err := prod.Run(1); err != nil {
			return err
		}
		src, err := pump.RingBufAcked[touchy](ctx, rb)
		if err != nil {
			return err
		}
		f, err := bj.Forward(ctx, src, j, "ev.fwd")
		if err != nil {
			src.Close()
			return err
		}
		err = f.Wait()
		src2, err2 := pump.RingBufAcked[touchy](ctx, rb)
		if err2 != nil {
			return err2
		}
		acked, produced := src2.Positions()
		src2.Close()
		if !errors.Is(err, bj.ErrPanic) || !strings.Contains(err.Error(), "record at 0") || acked != 0 || produced == 0 {
			return fmt.Errorf("got %v, ring acknowledged up to %d of %d; want ErrPanic naming record 0, which stays in the ring", err, acked, produced)
		}
		fmt.Println("ok: stopped with", err)
	default:
		return fmt.Errorf("no mode %q", mode)
	}
	return nil
}
