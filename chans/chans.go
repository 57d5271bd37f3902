package chans

import (
	"context"
	"errors"
	"iter"
	"time"
)

// ErrTimeout is RecvTimeout's error when the duration passes with no value.
var ErrTimeout = errors.New("chans: receive timed out")

// Receiver is the consuming end of a producer that runs in its own goroutine.
type Receiver[T any] interface {
	// C returns the channel of values; it is closed when the producer stops.
	C() <-chan T
	// Wait blocks until the producer's goroutine has exited and returns its error.
	Wait() error
	// Close stops the producer gracefully, then waits for it.
	Close() error
}

// Sender is the feeding end of a consumer that runs in its own goroutine.
type Sender[T any] interface {
	// C returns the channel the caller sends on, and closes when done.
	C() chan<- T
	// Wait blocks until the consumer's goroutine has exited and returns its error.
	Wait() error
	// Close stops accepting values, finishes those received, then waits.
	Close() error
}

// Recv receives one value from ch. ok is false when ch is closed. When ctx is
// done first, Recv returns context.Cause(ctx).
func Recv[T any](ctx context.Context, ch <-chan T) (v T, ok bool, err error) {
	select {
	case v, ok = <-ch:
		return v, ok, nil
	case <-ctx.Done():
		return v, false, context.Cause(ctx)
	}
}

// RecvTimeout receives one value from ch, waiting at most d. ok is false when
// ch is closed; err is ErrTimeout when d passes with no value.
func RecvTimeout[T any](ch <-chan T, d time.Duration) (v T, ok bool, err error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case v, ok = <-ch:
		return v, ok, nil
	case <-t.C:
		return v, false, ErrTimeout
	}
}

// Send sends v on ch, or returns context.Cause(ctx) when ctx is done first.
func Send[T any](ctx context.Context, ch chan<- T, v T) error {
	select {
	case ch <- v:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// All yields the values received from ch until ch is closed or ctx is done.
// Once ctx is done it yields nothing more, even while values are ready. It
// starts no goroutine; breaking out of the loop leaves ch untouched.
func All[T any](ctx context.Context, ch <-chan T) iter.Seq[T] {
	return func(yield func(T) bool) {
		for {
			if ctx.Err() != nil {
				return // select picks at random among ready cases
			}
			select {
			case v, ok := <-ch:
				if !ok || !yield(v) {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}
}

// Until yields the values received from ch until ch is closed or idle passes
// with no value (clj-ebpf's ringbuf-seq with :timeout-ms). The idle timer
// restarts after every value.
func Until[T any](ch <-chan T, idle time.Duration) iter.Seq[T] {
	return func(yield func(T) bool) {
		t := time.NewTimer(idle)
		defer t.Stop()
		for {
			select {
			case v, ok := <-ch:
				if !ok || !yield(v) {
					return
				}
				t.Reset(idle)
			case <-t.C:
				return
			}
		}
	}
}
