package jetstream

import (
	"context"
	"sync"
)

// handle is the lifecycle every handle of this package shares: one
// goroutine, started by start, stopped gracefully by Close or at once by
// ctx; Wait returns after the goroutine has exited.
type handle struct {
	closeOnce sync.Once
	closing   chan struct{} // closed by Close
	interrupt func()        // optional: called once by Close, after closing is closed
	done      chan struct{}
	err       error // set before done is closed
	cnt       counters
}

// start runs run on a new goroutine owned by h. run returns nil after a
// graceful stop, context.Cause(ctx) when ctx is done, or the error that
// stopped it.
func (h *handle) start(ctx context.Context, run func(ctx context.Context) error) {
	h.closing = make(chan struct{})
	h.done = make(chan struct{})
	go func() {
		defer close(h.done)
		h.err = run(ctx)
	}()
}

// Close stops the handle gracefully and waits for it.
func (h *handle) Close() error {
	h.closeOnce.Do(func() {
		close(h.closing)
		if h.interrupt != nil {
			h.interrupt()
		}
	})
	return h.Wait()
}

// Wait blocks until the goroutine has exited and returns its error.
func (h *handle) Wait() error {
	<-h.done
	return h.err
}

// Done returns a channel closed when the goroutine has exited.
func (h *handle) Done() <-chan struct{} { return h.done }

// Stats returns the counters now.
func (h *handle) Stats() Stats { return h.cnt.load() }
