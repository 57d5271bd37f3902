package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/producer"
	"github.com/bpfchan/bpfchan/internal/testenv"
	"github.com/bpfchan/bpfchan/pipeline"
	"github.com/bpfchan/bpfchan/pump"
)

// record is what producer.NewRing writes with size 16: a sequence number,
// then zeros.
type record struct {
	Seq uint64
	_   uint64
}

// newRingSource adopts a real ring-buffer pump (pump.RingBuf) over rb.
func newRingSource(ctx context.Context, rb *ebpf.Map) (*pump.Source[record], error) {
	return pump.RingBuf[record](ctx, rb)
}

// ringFixture is a ring buffer large enough for every record a test
// produces (no record is lost), and its producer of 16-byte records.
func ringFixture(t *testing.T) (*ebpf.Map, *producer.Producer) {
	t.Helper()
	testenv.RequireBPF(t)
	rb, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 1 << 22})
	if err != nil {
		t.Fatalf("create ring buffer: %v", err)
	}
	t.Cleanup(func() { rb.Close() })
	p, err := producer.NewRing(rb, 16)
	if err != nil {
		t.Fatalf("ring producer: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return rb, p
}

type event struct {
	seq  uint64
	even bool
}

// TestRingExactlyOnce runs Map → Filter → ForEach over a live ring-buffer
// pump fed by a BPF program, stops it gracefully once the producer is
// done, and checks every record was processed exactly once.
func TestRingExactlyOnce(t *testing.T) {
	noLeaks(t)
	for _, workers := range []int{1, 4} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			rb, prod := ringFixture(t)
			const n = 100_000
			g, ctx := pipeline.New(t.Context())
			src, err := newRingSource(ctx, rb)
			if err != nil {
				t.Fatal(err)
			}
			events := pipeline.Map(g, pipeline.From(g, src), func(_ context.Context, r record) (event, error) {
				return event{seq: r.Seq, even: r.Seq%2 == 0}, nil
			}, pipeline.Workers(workers), pipeline.Ordered())
			evens := pipeline.Filter(g, events, func(_ context.Context, e event) (bool, error) { return e.even, nil })
			seen := make([]int, n)
			var last int64 = -1
			var order error
			pipeline.ForEach(g, evens, func(_ context.Context, e event) error {
				if e.seq >= n {
					return fmt.Errorf("seq %d out of range", e.seq)
				}
				seen[e.seq]++
				if int64(e.seq) <= last && order == nil {
					order = fmt.Errorf("seq %d after %d", e.seq, last)
				}
				last = int64(e.seq)
				return nil
			})
			g.Go("producer", func(context.Context) error {
				for range n / 1000 {
					if err := prod.Run(1000); err != nil {
						return err
					}
				}
				g.Stop()
				return nil
			})
			if err := g.Wait(); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			attempted, lost, err := prod.Counts()
			if err != nil || attempted != n || lost != 0 {
				t.Fatalf("producer counts %d, %d, %v; want %d, 0, nil", attempted, lost, err, n)
			}
			for i, c := range seen {
				if want := 1 - i%2; c != want {
					t.Fatalf("seq %d processed %d times, want %d", i, c, want)
				}
			}
			if order != nil {
				t.Errorf("order: %v", order)
			}
			if ps := src.Stats(); ps.Received != n || ps.Delivered != n {
				t.Errorf("pump received %d, delivered %d; want %d", ps.Received, ps.Delivered, n)
			}
			st := g.Stats()
			wantIn := []uint64{n, n, n / 2}
			wantOut := []uint64{n, n / 2, 0}
			for i, s := range st {
				if s.In != wantIn[i] || s.Out != wantOut[i] || s.Dropped != 0 {
					t.Errorf("stage %s: in %d, out %d, dropped %d; want %d, %d, 0", s.Name, s.In, s.Out, s.Dropped, wantIn[i], wantOut[i])
				}
			}
		})
	}
}

// TestRingStopDrains stops the pipeline while every record is still in the
// kernel's ring: Stop closes the source gracefully, so all are processed.
func TestRingStopDrains(t *testing.T) {
	noLeaks(t)
	rb, prod := ringFixture(t)
	const n = 20_000
	if err := prod.Run(n); err != nil {
		t.Fatal(err)
	}
	g, ctx := pipeline.New(t.Context())
	src, err := newRingSource(ctx, rb)
	if err != nil {
		t.Fatal(err)
	}
	batches := pipeline.Batch(g, pipeline.From(g, src), 64, 0)
	var got, want uint64
	pipeline.ForEach(g, batches, func(_ context.Context, b []record) error {
		for _, r := range b {
			if s := r.Seq; s != want {
				return fmt.Errorf("got seq %d, want %d", s, want)
			}
			want++
			got++
		}
		return nil
	})
	g.Stop()
	if err := g.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if got != n {
		t.Fatalf("processed %d records after Stop, want %d", got, n)
	}
}

// TestRingAbort cancels the parent while the source is delivering: Wait
// returns the parent's cause, and the source's goroutine has exited. The
// pump sees both the cancelled context and the group's Close, so its Wait is
// the cause or nil depending on which it saw first; either way it accounts
// for every record it took.
func TestRingAbort(t *testing.T) {
	noLeaks(t)
	rb, prod := ringFixture(t)
	if err := prod.Run(10_000); err != nil {
		t.Fatal(err)
	}
	parent, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	errQuit := errors.New("operator quit")
	g, ctx := pipeline.New(parent)
	src, err := newRingSource(ctx, rb)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	pipeline.ForEach(g, pipeline.From(g, src), func(context.Context, record) error {
		if n++; n == 100 {
			cancel(errQuit)
		}
		return nil
	})
	if err := g.Wait(); err != errQuit {
		t.Fatalf("Wait: %v, want %v", err, errQuit)
	}
	if err := src.Wait(); err != errQuit && err != nil {
		t.Fatalf("source Wait: %v, want %v or nil", err, errQuit)
	}
	ps := src.Stats()
	if ps.Received != ps.Delivered+ps.Dropped+ps.DecodeErrors || ps.Delivered < 100 || n < 100 {
		t.Errorf("pump stats %+v, stage processed %d: want every record taken accounted for, and at least 100 delivered and processed", ps, n)
	}
}

// TestRingAbortDuringStop aborts while a Stop's graceful Close is still
// delivering a full ring from a pump that does not share the group's
// context: the group discards the rest, so the pump's Close cannot block on
// a channel nobody reads, and Wait returns the parent's cause.
func TestRingAbortDuringStop(t *testing.T) {
	noLeaks(t)
	rb, prod := ringFixture(t)
	if err := prod.Run(20_000); err != nil {
		t.Fatal(err)
	}
	parent, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	errQuit := errors.New("operator quit")
	g, _ := pipeline.New(parent)
	src, err := pump.RingBuf[record](context.Background(), rb)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	pipeline.ForEach(g, pipeline.From(g, src), func(context.Context, record) error {
		if n++; n == 10 {
			g.Stop()
			cancel(errQuit)
		}
		return nil
	})
	if err := g.Wait(); err != errQuit {
		t.Fatalf("Wait: %v, want %v", err, errQuit)
	}
	if err := src.Wait(); err != nil {
		t.Fatalf("pump Wait: %v", err)
	}
	if ps := src.Stats(); ps.Received != 20_000 || n >= 20_000 {
		t.Errorf("pump received %d, stage processed %d: want all received, not all processed", ps.Received, n)
	}
}
