package pump

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// handle is the lifecycle every pump shares: one goroutine, started by
// start, stopped gracefully by Close (closing, then interrupt) or at once by
// ctx (interrupt too); Wait returns after the goroutine has exited.
type handle struct {
	ctx     context.Context
	closing atomic.Bool
	done    chan struct{}
	err     error // set before done is closed
	cnt     counters

	// live, when set, adds to Stats what other goroutines count (the
	// waiting goroutine's peeks), never published through cnt.
	live func(*Stats)

	// Set before start, both optional: failed is called with the error
	// that stopped run (not after a graceful stop); exited just before done
	// is closed.
	failed func(error)
	exited func()

	mu        sync.Mutex // orders interrupt against the feed's cleanup
	gone      bool       // the goroutine has exited
	interrupt func()     // wakes the pump's blocking wait at once; sticky
}

// wake interrupts the pump's wait, unless the pump has already exited and
// released what interrupt would touch.
func (h *handle) wake() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.gone {
		h.interrupt()
	}
}

// start runs run on a new goroutine owned by h. run's exit condition: it
// returns nil after a graceful stop (closing, with nothing left to do), the
// context's cause when ctx is done, or the error that stopped it.
func (h *handle) start(ctx context.Context, interrupt func(), run func(context.Context) error, cleanup func() error) {
	h.ctx, h.interrupt = ctx, interrupt
	h.done = make(chan struct{})
	// Cancelling ctx interrupts a kernel wait at once (DESIGN rule 3); the
	// AfterFunc goroutine, if it ran, is waited for before Wait returns.
	var afterDone sync.WaitGroup
	afterDone.Add(1)
	stopAfter := context.AfterFunc(ctx, func() {
		defer afterDone.Done()
		h.wake()
	})
	go func() {
		defer func() {
			// exited first: a Duplex closes its own Done from it, which
			// must be closed once either direction's Wait or Close returns.
			if h.exited != nil {
				h.exited()
			}
			close(h.done)
		}()
		err := run(ctx)
		if err != nil && h.failed != nil {
			h.failed(err)
		}
		if stopAfter() {
			afterDone.Done()
		}
		afterDone.Wait()
		h.mu.Lock()
		h.gone = true
		h.mu.Unlock()
		if cerr := cleanup(); err == nil && cerr != nil && !h.closing.Load() {
			err = cerr
		}
		h.cnt.publish()
		h.err = err
	}()
}

// Close stops the pump gracefully and waits for it.
func (h *handle) Close() error {
	if h.closing.CompareAndSwap(false, true) {
		h.wake()
	}
	return h.Wait()
}

// Done returns a channel closed when the pump's goroutine has exited.
func (h *handle) Done() <-chan struct{} { return h.done }

// Wait blocks until the pump's goroutine has exited and returns its error.
func (h *handle) Wait() error {
	<-h.done
	return h.err
}

// Stats returns a snapshot of the counters.
func (h *handle) Stats() Stats {
	st := h.cnt.load()
	if h.live != nil {
		h.live(&st)
	}
	return st
}

// latch is the sticky "interrupted" the feeds and the writer share: set
// once by interrupt (from any goroutine), then seen by every later look.
type latch struct {
	once sync.Once
	c    chan struct{}
}

func newLatch() *latch { return &latch{c: make(chan struct{})} }

// set closes the latch; it reports whether this call did (the first).
func (l *latch) set() (first bool) {
	l.once.Do(func() { close(l.c); first = true })
	return first
}

// isSet reports whether set was called.
func (l *latch) isSet() bool {
	select {
	case <-l.c:
		return true
	default:
		return false
	}
}

// firstErr returns the first non-nil error (one error is one line: no
// errors.Join in what users see).
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// guard runs a user callback, turning a panic into an error carrying the
// panic value.
func guard(what string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: %w: %v", what, ErrPanic, r)
		}
	}()
	return f()
}
