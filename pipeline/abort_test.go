package pipeline_test

import (
	"context"
	"errors"
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
		// The input closes while the batch holds a value, and the abort comes
		// before the stage has run again: the partial batch is discarded.
		synctest.Test(t, func(t *testing.T) {
			parent, cancel := context.WithCancelCause(t.Context())
			g, _ := pipeline.New(parent)
			in := make(chan int)
			out := pipeline.Batch(g, in, 10, 0, pipeline.Buffer(1))
			in <- 1
			synctest.Wait() // the batch holds 1 and waits for more
			close(in)
			cancel(errQuit)
			if err := g.Wait(); err != errQuit {
				t.Fatalf("Wait: %v, want %v", err, errQuit)
			}
			if b, ok := <-out; ok {
				t.Fatalf("batch %v flushed after the abort, want none", b)
			}
		})
	})
}
