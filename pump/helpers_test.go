package pump_test

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/producer"
	"github.com/bpfchan/bpfchan/internal/testenv"
	"github.com/bpfchan/bpfchan/pump"
)

func TestMain(m *testing.M) {
	if pin := os.Getenv(childEnv); pin != "" {
		os.Exit(ackedChild(pin))
	}
	testenv.Main(m)
}

// Record types of 16 and 256 bytes whose first 8 bytes are the
// producers' sequence number.
type (
	rec16 struct {
		Seq uint64
		Pad [8]byte
	}
	rec256 struct {
		Seq uint64
		Pad [248]byte
	}
)

// failAfter bounds a test that would otherwise hang on a bug: it is a
// failure bound, not a timing assertion.
const failAfter = 30 * time.Second

func newMap(tb testing.TB, spec *ebpf.MapSpec) *ebpf.Map {
	tb.Helper()
	testenv.RequireBPF(tb)
	m, err := ebpf.NewMap(spec)
	if err != nil {
		tb.Fatalf("create %v map: %v", spec.Type, err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

func newRing(tb testing.TB, size uint32) *ebpf.Map {
	return newMap(tb, &ebpf.MapSpec{Name: "test_ring", Type: ebpf.RingBuf, MaxEntries: size})
}

func newQueue(tb testing.TB, typ ebpf.MapType, valueSize, maxEntries uint32) *ebpf.Map {
	return newMap(tb, &ebpf.MapSpec{Name: "test_q", Type: typ, ValueSize: valueSize, MaxEntries: maxEntries})
}

func ringProducer(tb testing.TB, rb *ebpf.Map, size int, opts ...producer.Option) *producer.Producer {
	tb.Helper()
	p, err := producer.NewRing(rb, size, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

func pushProducer(tb testing.TB, m *ebpf.Map, opts ...producer.Option) *producer.Producer {
	tb.Helper()
	p, err := producer.NewPush(m, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

func run(tb testing.TB, p *producer.Producer, n int) {
	tb.Helper()
	if err := p.Run(n); err != nil {
		tb.Fatal(err)
	}
}

// recv receives one value or fails the test after failAfter.
func recv[T any](tb testing.TB, ch <-chan T) (T, bool) {
	tb.Helper()
	select {
	case v, ok := <-ch:
		return v, ok
	case <-time.After(failAfter):
		tb.Fatalf("no value after %v", failAfter)
		panic("unreachable")
	}
}

// stopper is what every pump handle has.
type stopper interface {
	Close() error
	Wait() error
}

// closeOnCleanup makes sure a pump is stopped when a test ends early.
func closeOnCleanup(tb testing.TB, cancel context.CancelFunc, s stopper) {
	tb.Cleanup(func() {
		cancel()
		s.Wait()
	})
}

// awaitDelivered returns once the sink has pushed n values (its Stats are
// published after every push), or fails after failAfter.
func awaitDelivered[T any](tb testing.TB, s *pump.Sink[T], n uint64) {
	tb.Helper()
	deadline := time.Now().Add(failAfter)
	for s.Stats().Delivered < n {
		if time.Now().After(deadline) {
			tb.Fatalf("%d values pushed after %v, want %d", s.Stats().Delivered, failAfter, n)
		}
		runtime.Gosched()
	}
}
