package pump_test

import (
	"context"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/producer"
	"github.com/bpfchan/bpfchan/pump"
)

// closeUnderLoad calls Close while the map is never empty: the consumer
// runs the producer (chunk records) after every value it receives until
// Close has returned. Close delivers what the map held when the pump saw
// it, then returns. It used to drain until the map was empty, which this
// consumer never allows: Close never returned.
func closeUnderLoad[T any](t *testing.T, src *pump.Source[T], p *producer.Producer, chunk int, weight func(T) int) {
	t.Helper()
	run(t, p, chunk)
	closed := make(chan error, 1)
	go func() { closed <- src.Close() }()
	var (
		n        int
		closeErr error
		done     bool
	)
	timeout := time.After(failAfter)
	for v := range src.C() {
		n += weight(v)
		if !done {
			select {
			case closeErr = <-closed:
				done = true
			case <-timeout:
				t.Fatalf("Close has not returned after %v while the producer runs; stats %+v", failAfter, src.Stats())
			default:
				run(t, p, chunk)
			}
		}
	}
	if !done {
		closeErr = <-closed
	}
	if closeErr != nil {
		t.Fatalf("Close: %v", closeErr)
	}
	st := src.Stats()
	if st.Received != st.Delivered+st.Dropped+st.DecodeErrors || st.Delivered != uint64(n) || st.Dropped != 0 {
		t.Fatalf("stats %+v, consumer received %d", st, n)
	}
}

func TestCloseUnderLoad(t *testing.T) {
	t.Run("ring", func(t *testing.T) {
		rb := newRing(t, 1<<16)
		p := ringProducer(t, rb, 16)
		ctx, cancel := context.WithCancel(t.Context())
		src, err := pump.RingBuf[rec16](ctx, rb)
		if err != nil {
			t.Fatal(err)
		}
		closeOnCleanup(t, cancel, src)
		closeUnderLoad(t, src, p, 1000, one)
	})
	t.Run("batches", func(t *testing.T) {
		rb := newRing(t, 1<<16)
		p := ringProducer(t, rb, 16)
		ctx, cancel := context.WithCancel(t.Context())
		src, err := pump.RingBufBatches[rec16](ctx, rb, pump.WithBatch(8, time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		closeOnCleanup(t, cancel, src)
		closeUnderLoad(t, src, p, 1000, func(b []rec16) int { return len(b) })
	})
	t.Run("queue", func(t *testing.T) {
		m := newQueue(t, ebpf.Queue, 8, 1024)
		p := pushProducer(t, m)
		ctx, cancel := context.WithCancel(t.Context())
		src, err := pump.Queue[uint64](ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		closeOnCleanup(t, cancel, src)
		closeUnderLoad(t, src, p, 100, one)
	})
	t.Run("perf", func(t *testing.T) {
		m := newPerfArray(t)
		p := perfProducer(t, m, 16)
		ctx, cancel := context.WithCancel(t.Context())
		src, err := pump.Perf[rec16](ctx, m, pump.WithPerfBuffer(4096))
		if err != nil {
			t.Fatal(err)
		}
		closeOnCleanup(t, cancel, src)
		closeUnderLoad(t, src, p, 100, one)
	})
}

func one[T any](T) int { return 1 }
