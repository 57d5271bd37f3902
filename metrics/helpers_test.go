package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/producer"
	"github.com/bpfchan/bpfchan/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// rec16 is a 16-byte record whose first 8 bytes are the producers'
// sequence number.
type rec16 struct {
	Seq uint64
	Pad [8]byte
}

// failAfter bounds a test that would otherwise hang on a bug: a failure
// bound, not a timing assertion.
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

func newRing(tb testing.TB) *ebpf.Map {
	return newMap(tb, &ebpf.MapSpec{Name: "test_ring", Type: ebpf.RingBuf, MaxEntries: 1 << 16})
}

func newQueue(tb testing.TB) *ebpf.Map {
	return newMap(tb, &ebpf.MapSpec{Name: "test_q", Type: ebpf.Queue, ValueSize: 16, MaxEntries: 64})
}

func newHash(tb testing.TB) *ebpf.Map {
	return newMap(tb, &ebpf.MapSpec{Name: "test_hash", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 64})
}

func ringProducer(tb testing.TB, rb *ebpf.Map) *producer.Producer {
	tb.Helper()
	p, err := producer.NewRing(rb, 16)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

func produce(tb testing.TB, p *producer.Producer, n int) {
	tb.Helper()
	if err := p.Run(n); err != nil {
		tb.Fatal(err)
	}
}

// recvN receives n values from ch, failing the test after failAfter.
func recvN[T any](tb testing.TB, ch <-chan T, n int) {
	tb.Helper()
	deadline := time.NewTimer(failAfter)
	defer deadline.Stop()
	for i := range n {
		select {
		case _, ok := <-ch:
			if !ok {
				tb.Fatalf("channel closed after %d values, want %d", i, n)
			}
		case <-deadline.C:
			tb.Fatalf("received %d values in %v, want %d", i, failAfter, n)
		}
	}
}

// drain receives from ch until it is closed.
func drain[T any](ch <-chan T) {
	for range ch {
	}
}

// closer is a handle that stops gracefully.
type closer interface{ Close() error }

func closeAll(tb testing.TB, hs ...closer) {
	tb.Helper()
	for _, h := range hs {
		if err := h.Close(); err != nil {
			tb.Errorf("close %T: %v", h, err)
		}
	}
}

var bg = context.Background()
