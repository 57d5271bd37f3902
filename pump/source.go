package pump

import (
	"github.com/bpfchan/bpfchan/chans"
)

// Source is a pump that takes records out of a kernel map and sends them on
// C(). It implements chans.Receiver[T].
type Source[T any] struct {
	h       handle
	c       chan T
	recycle func(T)
}

// C returns the channel of values. It is closed when the pump stops, after
// its last send.
func (s *Source[T]) C() <-chan T { return s.c }

// Wait blocks until the pump's goroutine has exited. It returns nil after
// Close, context.Cause(ctx) after ctx was cancelled, and otherwise the error
// (naming the map) that stopped the pump.
func (s *Source[T]) Wait() error { return s.h.Wait() }

// Done returns a channel that is closed when the pump has stopped (Wait
// then returns at once).
func (s *Source[T]) Done() <-chan struct{} { return s.h.Done() }

// Close stops the pump gracefully: what the kernel buffer already holds
// when the pump sees Close is delivered on C() (so a consumer must keep
// receiving), records produced after that are left in the map, then C() is
// closed. A ring record reserved before Close is waited for until its
// producer commits or discards it, however long that takes; cancelling the
// constructor's ctx bounds the wait. It returns Wait's result.
//
// Close is for "deliver the rest", and it waits for a receiver: a consumer
// that stops receiving early (a return from its range loop) must not
// `defer src.Close()`, which would wait forever. It cancels the ctx it gave
// the constructor instead (`defer cancel()`), which stops the pump at once.
func (s *Source[T]) Close() error { return s.h.Close() }

// Stats returns the pump's counters. While the pump runs they are a recent
// snapshot (published whenever the pump is about to block); after it stopped
// they are final and Received == Delivered + Dropped + DecodeErrors.
func (s *Source[T]) Stats() Stats { return s.h.Stats() }

// Recycle hands a batch received from a RingBufBatches source back to the
// pump, which will reuse its memory for a later batch: the zero-allocation
// path. The caller must not touch v afterwards, nor memory its values
// point to (the bytes of a []byte value are reused too). Without Recycle
// every batch is freshly allocated and belongs to its receiver. On other
// sources Recycle does nothing.
func (s *Source[T]) Recycle(v T) {
	if s.recycle != nil {
		s.recycle(v)
	}
}

// Compile-time checks of the chans contracts.
var (
	_ chans.Receiver[int] = (*Source[int])(nil)
	_ chans.Sender[int]   = (*Sink[int])(nil)
)
