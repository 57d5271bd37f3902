package pipeline_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/bpfchan/bpfchan/pipeline"
)

// unclosed is a chans.Receiver that breaks the contract: its goroutine sends
// 0, 1, 2... until Close, and exits without closing C().
type unclosed struct {
	c    chan int
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func newUnclosed() *unclosed {
	r := &unclosed{c: make(chan int), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for i := 0; ; i++ {
			select {
			case r.c <- i:
			case <-r.stop:
				return
			}
		}
	}()
	return r
}

func (r *unclosed) C() <-chan int { return r.c }
func (r *unclosed) Wait() error   { <-r.done; return nil }
func (r *unclosed) Close() error  { r.once.Do(func() { close(r.stop) }); return r.Wait() }

// TestFromAbortUnclosedReceiver: on abort, From discards what its source
// still delivers only until the source's goroutine has exited, so a source
// that never closes C() does not keep Wait from returning.
func TestFromAbortUnclosedReceiver(t *testing.T) {
	noLeaks(t)
	errQuit := errors.New("quit")
	parent, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	g, _ := pipeline.New(parent)
	r := newUnclosed()
	var n int
	pipeline.ForEach(g, pipeline.From(g, r), func(context.Context, int) error {
		if n++; n == 3 {
			cancel(errQuit)
		}
		return nil
	})
	if err := g.Wait(); err != errQuit {
		t.Fatalf("Wait: %v, want %v", err, errQuit)
	}
}

// failing is a chans.Receiver that delivers 0 … n-1, then closes C() and
// stops with err, as a pump whose map fails does.
type failing struct {
	c    chan int
	done chan struct{}
	err  error
}

func newFailing(n int, err error) *failing {
	r := &failing{c: make(chan int), done: make(chan struct{}), err: err}
	go func() {
		defer close(r.done)
		defer close(r.c)
		for i := range n {
			r.c <- i
		}
	}()
	return r
}

func (r *failing) C() <-chan int { return r.c }
func (r *failing) Wait() error   { <-r.done; return r.err }
func (r *failing) Close() error  { return r.Wait() }

// TestFromSourceFails: an adopted source's error aborts the group and comes
// back named after the source's adoption order; the other source, still
// delivering, is drained so that its goroutine exits.
func TestFromSourceFails(t *testing.T) {
	noLeaks(t)
	errGone := errors.New("ring gone")
	g, _ := pipeline.New(t.Context())
	ok := pipeline.From(g, newFailing(1000, nil))
	bad := pipeline.From(g, newFailing(5, errGone))
	pipeline.ForEach(g, pipeline.Merge(g, ok, bad), func(context.Context, int) error { return nil })
	err := g.Wait()
	var se *pipeline.StageError
	if !errors.As(err, &se) || se.Stage != "from#2" || !errors.Is(err, errGone) {
		t.Fatalf("Wait: %v, want stage from#2 wrapping %v", err, errGone)
	}
}

// TestFromNamed: From takes a Name, and is numbered among the stages.
func TestFromNamed(t *testing.T) {
	noLeaks(t)
	errGone := errors.New("ring gone")
	g, _ := pipeline.New(t.Context())
	events := pipeline.From(g, newFailing(5, errGone), pipeline.Name("ring"))
	pipeline.ForEach(g, pipeline.From(g, newFailing(5, nil)), func(context.Context, int) error { return nil })
	pipeline.ForEach(g, events, func(context.Context, int) error { return nil })
	err := g.Wait()
	var se *pipeline.StageError
	if !errors.As(err, &se) || se.Stage != "ring" || !errors.Is(err, errGone) {
		t.Fatalf("Wait: %v, want stage ring wrapping %v", err, errGone)
	}
	var names []string
	for _, s := range g.Stats() {
		names = append(names, s.Name)
	}
	if want := []string{"foreach#3", "foreach#4"}; !slices.Equal(names, want) {
		t.Errorf("stages %v, want %v", names, want)
	}
}
