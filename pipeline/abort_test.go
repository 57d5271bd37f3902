package pipeline_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/bpfchan/bpfchan/pipeline"
)

// filled returns a channel of the caller's holding 0 … n-1 (closed when
// closed is true): its values are ready whatever the group's state.
func filled(n int, closed bool) chan int {
	ch := make(chan int, n)
	for i := range n {
		ch <- i
	}
	if closed {
		close(ch)
	}
	return ch
}

// abortedGroup returns a group whose parent is already cancelled with
// errQuit.
func abortedGroup(t *testing.T, errQuit error) *pipeline.Group {
	parent, cancel := context.WithCancelCause(t.Context())
	cancel(errQuit)
	g, _ := pipeline.New(parent)
	return g
}

// TestNothingPassesAfterAbort: once the group aborted, values that are
// still ready on an input reach no sink, no loop body and no batch.
func TestNothingPassesAfterAbort(t *testing.T) {
	noLeaks(t)
	errQuit := errors.New("quit")
	const runs, n = 20, 100
	t.Run("To", func(t *testing.T) {
		for range runs {
			g := abortedGroup(t, errQuit)
			s := newBufferedCollector(n) // a send to it never blocks
			pipeline.To(g, filled(n, false), s)
			if err := g.Wait(); err != errQuit {
				t.Fatalf("Wait: %v, want %v", err, errQuit)
			}
			if len(s.got) != 0 {
				t.Fatalf("sink got %d values after the abort, want none", len(s.got))
			}
		}
	})
	t.Run("All", func(t *testing.T) {
		g := abortedGroup(t, errQuit)
		var vals int
		var errs []error
		for _, err := range pipeline.All(g, filled(n, false)) {
			if err != nil {
				errs = append(errs, err)
				continue
			}
			vals++
		}
		if vals != 0 || len(errs) != 1 || errs[0] != errQuit {
			t.Fatalf("All yielded %d values and errors %v after the abort, want none and [%v]", vals, errs, errQuit)
		}
	})
	t.Run("Batch", func(t *testing.T) {
		// The batch holds a value; the group aborts, and only then does the
		// input close: whichever of the two the stage sees first, the partial
		// batch is discarded. (Closing first would let the stage flush
		// legitimately before the abort.)
		synctest.Test(t, func(t *testing.T) {
			parent, cancel := context.WithCancelCause(t.Context())
			g, _ := pipeline.New(parent)
			in := make(chan int)
			out := pipeline.Batch(g, in, 10, 0, pipeline.Buffer(1))
			in <- 1
			synctest.Wait() // the batch holds 1 and waits for more
			cancel(errQuit)
			close(in)
			if err := g.Wait(); err != errQuit {
				t.Fatalf("Wait: %v, want %v", err, errQuit)
			}
			if b, ok := <-out; ok {
				t.Fatalf("batch %v flushed after the abort, want none", b)
			}
		})
	})
}

// TestOrderedAbort aborts an Ordered stage with slots in flight: by an error
// in one of its workers, and by a parent cancel. Wait returns the right
// error and every goroutine (dispatcher, workers, collector) exits.
func TestOrderedAbort(t *testing.T) {
	noLeaks(t)
	errBad := errors.New("bad value")
	errQuit := errors.New("quit")
	for _, byError := range []bool{true, false} {
		name := map[bool]string{true: "worker error", false: "parent cancel"}[byError]
		t.Run(name, func(t *testing.T) {
			parent, cancel := context.WithCancelCause(t.Context())
			defer cancel(nil)
			g, _ := pipeline.New(parent)
			out := pipeline.Map(g, pipeline.FromSeq(g, naturals()), func(ctx context.Context, v int) (int, error) {
				_ = jitter(v)
				if v == 500 {
					if byError {
						return 0, errBad
					}
					cancel(errQuit)
				}
				return v, nil
			}, pipeline.Workers(4), pipeline.Ordered(), pipeline.Name("ordered"))
			pipeline.ForEach(g, out, func(context.Context, int) error { return nil })
			err := g.Wait()
			var se *pipeline.StageError
			switch {
			case byError && (!errors.As(err, &se) || se.Stage != "ordered" || !errors.Is(err, errBad)):
				t.Fatalf("Wait: %v, want stage ordered wrapping %v", err, errBad)
			case !byError && err != errQuit:
				t.Fatalf("Wait: %v, want %v", err, errQuit)
			}
			if st := g.Stats()[1]; st.In < 500 || st.Out >= st.In {
				t.Errorf("stats %+v: want at least 500 in and fewer out (slots abandoned)", st)
			}
		})
	}
}

// TestNoNewWorkAfterAbort: a worker checks the context before each value,
// so once a callback has cancelled the parent no further callback runs, even
// though more values are ready on the input.
func TestNoNewWorkAfterAbort(t *testing.T) {
	noLeaks(t)
	errQuit := errors.New("quit")
	tests := []struct {
		name  string
		build func(g *pipeline.Group, in <-chan int, f func(int))
	}{
		{"map", func(g *pipeline.Group, in <-chan int, f func(int)) {
			out := pipeline.Map(g, in, func(_ context.Context, v int) (int, error) { f(v); return v, nil }, pipeline.Buffer(10))
			pipeline.ForEach(g, out, func(context.Context, int) error { return nil })
		}},
		{"filter", func(g *pipeline.Group, in <-chan int, f func(int)) {
			out := pipeline.Filter(g, in, func(_ context.Context, v int) (bool, error) { f(v); return false, nil })
			pipeline.ForEach(g, out, func(context.Context, int) error { return nil })
		}},
		{"foreach", func(g *pipeline.Group, in <-chan int, f func(int)) {
			pipeline.ForEach(g, in, func(_ context.Context, v int) error { f(v); return nil })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent, cancel := context.WithCancelCause(t.Context())
			defer cancel(nil)
			g, _ := pipeline.New(parent)
			var calls []int
			tt.build(g, filled(10, false), func(v int) {
				calls = append(calls, v)
				if v == 3 {
					cancel(errQuit)
				}
			})
			if err := g.Wait(); err != errQuit {
				t.Fatalf("Wait: %v, want %v", err, errQuit)
			}
			if !slices.Equal(calls, []int{0, 1, 2, 3}) {
				t.Errorf("callbacks for %v, want [0 1 2 3]: none after the abort", calls)
			}
		})
	}
}

// TestFailureBeforeClose: a stage that fails has aborted the group before
// it closes its output, so the stage downstream cannot take the close for
// the input's end: a partial batch is discarded, never flushed, and the
// error is the stage's.
func TestFailureBeforeClose(t *testing.T) {
	noLeaks(t)
	errBad := errors.New("bad value")
	for range 200 {
		g, _ := pipeline.New(t.Context())
		m := pipeline.Map(g, pipeline.FromSeq(g, upTo(10)), func(_ context.Context, v int) (int, error) {
			if v == 3 {
				return 0, errBad
			}
			return v, nil
		}, pipeline.Name("parse"))
		var flushed [][]int
		pipeline.ForEach(g, pipeline.Batch(g, m, 10, 0), func(_ context.Context, b []int) error {
			flushed = append(flushed, b)
			return nil
		})
		err := g.Wait()
		var se *pipeline.StageError
		if !errors.As(err, &se) || se.Stage != "parse" || !errors.Is(err, errBad) {
			t.Fatalf("Wait: %v, want stage parse wrapping %v", err, errBad)
		}
		if len(flushed) != 0 {
			t.Fatalf("batches %v flushed after the failure, want none", flushed)
		}
	}
}
