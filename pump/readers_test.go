package pump_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/pump"
)

// TestSecondReader: a second ring-buffer or perf pump on one map is refused
// with ErrBusy naming the map (two ring readers delivered duplicates, a
// second perf reader took every sample), and accepted once the first pump
// has stopped. A queue may have several pumps (they get disjoint values).
func TestSecondReader(t *testing.T) {
	type opener func(ctx context.Context, m *ebpf.Map) (interface{ Close() error }, error)
	ring := func(ctx context.Context, m *ebpf.Map) (interface{ Close() error }, error) {
		return pump.RingBuf[rec16](ctx, m)
	}
	batches := func(ctx context.Context, m *ebpf.Map) (interface{ Close() error }, error) {
		return pump.RingBufBatches[rec16](ctx, m)
	}
	perf := func(ctx context.Context, m *ebpf.Map) (interface{ Close() error }, error) {
		return pump.Perf[rec16](ctx, m)
	}
	for _, tc := range []struct {
		name          string
		m             func(t *testing.T) *ebpf.Map
		first, second opener
	}{
		{"ring", func(t *testing.T) *ebpf.Map { return newRing(t, 4096) }, ring, ring},
		{"ring+batches", func(t *testing.T) *ebpf.Map { return newRing(t, 4096) }, ring, batches},
		{"perf", func(t *testing.T) *ebpf.Map { return newPerfArray(t) }, perf, perf},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.m(t)
			a, err := tc.first(t.Context(), m)
			if err != nil {
				t.Fatal(err)
			}
			b, err := tc.second(t.Context(), m)
			if err == nil {
				b.Close()
				a.Close()
				t.Fatal("a second reader on one map was accepted")
			}
			if !errors.Is(err, pump.ErrBusy) || !strings.Contains(err.Error(), "test_") {
				a.Close()
				t.Fatalf("second reader: %v, want ErrBusy naming the map", err)
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			b, err = tc.second(t.Context(), m)
			if err != nil {
				t.Fatalf("a reader after the first stopped: %v", err)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("queue", func(t *testing.T) {
		m := newQueue(t, ebpf.Queue, 8, 4)
		a, err := pump.Queue[uint64](t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := pump.Queue[uint64](t.Context(), m)
		if err != nil {
			t.Fatalf("second queue pump: %v", err)
		}
		b.Close()
	})
}
