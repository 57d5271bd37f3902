package pump

import (
	"context"
	"sync/atomic"

	"github.com/cilium/ebpf"
)

// Duplex is both directions over one queue or stack map: values sent on
// In() are pushed into the map, values popped from it arrive on Out()
// (clj-ebpf's queue-channel and stack-channel). It is a Sink and a Source
// sharing the map; a push through In() wakes the Out() poller at once.
//
// The two directions stand or fall together: when one stops on an error
// (FullFail, a decoder panic, a closed map), the other is cancelled with
// that error, and Wait reports it once.
type Duplex[T any] struct {
	in   *Sink[T]
	out  *Source[T]
	done chan struct{}
}

// Done returns a channel that is closed when both directions have stopped
// (Wait then returns at once). Send on In() in a select with Done when the
// Duplex may stop on an error.
func (d *Duplex[T]) Done() <-chan struct{} { return d.done }

// In returns the channel to send values on; the caller may close it when
// done (Out keeps running until Close or ctx).
func (d *Duplex[T]) In() chan<- T { return d.in.C() }

// Out returns the channel of popped values; closed when the pump stops.
func (d *Duplex[T]) Out() <-chan T { return d.out.C() }

// Peek returns the front (queue) or top (stack) value without removing it;
// maps.ErrEmpty when there is none.
func (d *Duplex[T]) Peek() (T, error) { return d.in.Peek() }

// Close stops both directions gracefully: values whose send on In()
// completed are pushed, then what the map holds is delivered on Out() (so a
// consumer must keep receiving), then Out() closes.
func (d *Duplex[T]) Close() error {
	return firstErr(d.in.Close(), d.out.Close())
}

// Wait waits for both directions and returns the error that stopped the
// Duplex: the first failure (the other direction was cancelled with it),
// context.Cause(ctx) after a cancel, nil after Close.
func (d *Duplex[T]) Wait() error {
	return firstErr(d.in.Wait(), d.out.Wait())
}

// Stats sums both directions' counters; InStats and OutStats give each.
func (d *Duplex[T]) Stats() Stats { return d.in.Stats().add(d.out.Stats()) }

// InStats returns the counters of the pushing direction.
func (d *Duplex[T]) InStats() Stats { return d.in.Stats() }

// OutStats returns the counters of the popping direction.
func (d *Duplex[T]) OutStats() Stats { return d.out.Stats() }

// QueueChannel starts a Duplex over the queue map m: FIFO. Options are
// those of Queue and QueueWriter; WithBuffer sizes both channels.
func QueueChannel[T any](ctx context.Context, m *ebpf.Map, opts ...Option) (*Duplex[T], error) {
	return newDuplex[T](ctx, "queue channel", m, ebpf.Queue, opts)
}

// StackChannel starts a Duplex over the stack map m: LIFO, exactly for the
// values already in the stack. Its poller pops ahead of its receiver (it
// holds one popped value, more with WithBuffer), so after pushing 1 then 2
// through In() the first value out of Out() can be 1. Undo/redo-style
// strict pop-on-demand uses maps.Stack.PopWait instead.
func StackChannel[T any](ctx context.Context, m *ebpf.Map, opts ...Option) (*Duplex[T], error) {
	return newDuplex[T](ctx, "stack channel", m, ebpf.Stack, opts)
}

func newDuplex[T any](ctx context.Context, what string, m *ebpf.Map, typ ebpf.MapType, opts []Option) (*Duplex[T], error) {
	c, err := newConfig(what, duplexOpts, opts)
	if err != nil {
		return nil, err
	}
	// Each direction owns a clone of its own.
	mo, err := claim(ctx, what, m, typ)
	if err != nil {
		return nil, err
	}
	out, f, dec, err := newPopSource[T](what, mo, c)
	if err != nil {
		mo.m.Close()
		return nil, err
	}
	mi, err := claim(ctx, what, m, typ)
	if err != nil {
		f.close()
		return nil, err
	}
	in := &Sink[T]{}
	w, err := newWriter(what, mi, c, in)
	if err != nil {
		mi.m.Close()
		f.close()
		return nil, err
	}
	// Both directions run under one ctx of their own: the first error
	// that is not the caller's cancel stops the other direction too.
	dctx, cancel := context.WithCancelCause(ctx)
	d := &Duplex[T]{in: in, out: out, done: make(chan struct{})}
	failed := func(err error) {
		if ctx.Err() == nil {
			cancel(err)
		}
	}
	var left atomic.Int32
	left.Store(2)
	exited := func() {
		if left.Add(-1) == 0 {
			cancel(nil)
			close(d.done)
		}
	}
	in.h.failed, in.h.exited = failed, exited
	out.h.failed, out.h.exited = failed, exited
	in.h.start(dctx, w.interrupt, w.run, w.close)
	start(dctx, c, f, dec, newSingle(c, out), out)
	return d, nil
}
