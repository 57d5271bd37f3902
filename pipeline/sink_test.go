package pipeline_test

import (
	"errors"
	"testing"

	"github.com/bpfchan/bpfchan/internal/testenv"
	bpfmaps "github.com/bpfchan/bpfchan/maps"
	"github.com/bpfchan/bpfchan/pipeline"
	"github.com/bpfchan/bpfchan/pump"
)

// stopper is a chans.Sender that takes n values and then stops by itself,
// returning err from Wait, without reading C() any more: what a sink does
// when a push fails.
type stopper struct {
	c    chan int
	done chan struct{}
	err  error
	got  int
}

func newStopper(n int, err error) *stopper {
	s := &stopper{c: make(chan int), done: make(chan struct{}), err: err}
	go func() {
		defer close(s.done)
		for range n {
			if _, ok := <-s.c; !ok {
				return
			}
			s.got++
		}
	}()
	return s
}

func (s *stopper) C() chan<- int { return s.c }
func (s *stopper) Wait() error   { <-s.done; return s.err }
func (s *stopper) Close() error  { return s.Wait() }

// TestToSinkStopsByItself: a sink that stops on its own while values still
// come must not block To, its upstream or Wait. Its error is the stage's; a
// sink that stops with nil before its input ended is ErrSinkStopped, since
// the values still coming would otherwise be lost unnoticed.
func TestToSinkStopsByItself(t *testing.T) {
	noLeaks(t)
	errGaveUp := errors.New("sink gave up")
	tests := []struct {
		name string
		err  error // what the sink's Wait returns
		want error // what Wait's *StageError wraps
	}{
		{"error", errGaveUp, errGaveUp},
		{"nil", nil, pipeline.ErrSinkStopped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, _ := pipeline.New(t.Context())
			s := newStopper(5, tt.err)
			pipeline.To(g, pipeline.FromSeq(g, naturals()), s) // never ends by itself
			err := g.Wait()
			var se *pipeline.StageError
			if !errors.As(err, &se) || se.Stage != "to#2" || !errors.Is(err, tt.want) {
				t.Fatalf("Wait: %v, want stage to#2 wrapping %v", err, tt.want)
			}
			if s.got != 5 {
				t.Errorf("sink took %d values, want 5", s.got)
			}
		})
	}
}

// TestToQueueWriterFull feeds a real queue writer with FullFail into a queue
// of 2: the third push fails, the writer stops with ErrFull, and the
// pipeline ends with that error instead of hanging on the writer's C().
func TestToQueueWriterFull(t *testing.T) {
	noLeaks(t)
	testenv.RequireBPF(t)
	q, err := bpfmaps.NewQueue[uint64](2)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	g, ctx := pipeline.New(t.Context())
	sink, err := pump.QueueWriter[uint64](ctx, q.Map(), pump.WithFull(pump.FullFail))
	if err != nil {
		t.Fatal(err)
	}
	vals := pipeline.FromSeq(g, func(yield func(uint64) bool) {
		for i := range uint64(6) {
			if !yield(i) {
				return
			}
		}
	})
	pipeline.To(g, vals, sink)
	err = g.Wait()
	var se *pipeline.StageError
	if !errors.As(err, &se) || se.Stage != "to#2" || !errors.Is(err, bpfmaps.ErrFull) {
		t.Fatalf("Wait: %v, want stage to#2 wrapping maps.ErrFull", err)
	}
	for want := range uint64(2) {
		if v, err := q.Pop(); err != nil || v != want {
			t.Fatalf("Pop: %d, %v; want %d", v, err, want)
		}
	}
	if ps := sink.Stats(); ps.Delivered != 2 || ps.Dropped != 1 {
		t.Errorf("writer delivered %d, dropped %d; want 2 and 1", ps.Delivered, ps.Dropped)
	}
}
