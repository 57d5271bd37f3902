package pipeline

import (
	"iter"

	"github.com/bpfchan/bpfchan/chans"
)

// From adopts r, a pump or a watcher, into the group and returns its channel,
// r.C(), itself: values do not take an extra hop through a goroutine, so
// From has no counters of its own (r's Stats has them).
//
// The group now owns r's end. On Stop it calls r.Close, so r delivers what
// the kernel buffer already holds and then closes its channel, and the stages
// downstream drain it. On abort it closes r too, and discards what r still
// delivers, so that r's graceful Close cannot block on a channel no stage
// reads any more. When r stops by itself, its channel closes and the
// pipeline ends. An error from r's Wait (or Close) becomes a *StageError
// named as [Name] says ("from#1" when From comes first), unless the group was
// already aborting. r's Wait must be safe to call while Close runs, as every bpfchan
// pump's and watcher's is.
//
// r must close C() when it stops, as the chans.Receiver contract asks: the
// stages downstream end when it is closed. A Receiver that never closes it
// makes a Stop hang (an abort still ends: the stages stop reading it).
//
// Create r with the group's context (the one New returned): then an abort
// also interrupts r at once, instead of at its next delivery.
//
// Options: Name. From is numbered among the stages but, having no counters,
// is not one of [Group.Stats].
func From[T any](g *Group, r chans.Receiver[T], opts ...StageOption) <-chan T {
	if g == nil {
		panic("pipeline: From with a nil Group")
	}
	if r == nil {
		panic("pipeline: From with a nil Receiver")
	}
	ch := r.C()
	if ch == nil {
		panic("pipeline: From a Receiver whose C() is nil")
	}
	c := configure("from", optName, opts)
	g.mu.Lock()
	name := g.name("from", c)
	g.mu.Unlock()

	ended := make(chan struct{})
	g.start(func() error { // exits when r's goroutine has exited
		err := r.Wait()
		close(ended)
		return g.failure(name, err)
	})
	g.start(func() error { // exits when r ended by itself, or after closing r on Stop or abort
		select {
		case <-ended:
			return nil
		case <-g.stopping:
		case <-g.ctx.Done():
		}
		return g.failure(name, r.Close())
	})
	g.spawn(func() { // exits when r ended by itself, or after draining it on abort
		select {
		case <-ended:
		case <-g.ctx.Done():
			// Also when the abort comes during a graceful Close begun by Stop.
			// Until r's goroutine has exited, not until ch is closed: a
			// Receiver that never closes its channel must not hang Wait.
			for {
				select {
				case _, ok := <-ch:
					if !ok {
						return
					}
				case <-ended:
					return
				}
			}
		}
	})
	return ch
}

// FromSeq passes on the values of seq, read in a goroutine the group owns. It
// stops taking values on Stop (the value in hand is still passed on) or on
// abort, and then closes the returned channel. Stop and abort take effect
// between two values: a seq that blocks inside, waiting for its next value,
// should watch the group's context or [Group.Stopping] itself. Options:
// Buffer, Overflow, Name.
func FromSeq[T any](g *Group, seq iter.Seq[T], opts ...StageOption) <-chan T {
	if g == nil {
		panic("pipeline: FromSeq with a nil Group")
	}
	if seq == nil {
		panic("pipeline: FromSeq with a nil sequence")
	}
	c := configure("seq", optBuffer|optOverflow|optName, opts)
	out := make(chan T, c.buffer)
	output(g, out)
	st := g.newStage("seq", c, lenOf(out), nil)
	g.spawn(func() { // exits when seq ends, on Stop, or on abort
		defer close(out)
		ctx := g.ctx
		done := ctx.Done()
		if aborted(done) || aborted(g.stopping) {
			return
		}
		for v := range seq {
			st.in.Add(1)
			if !send(ctx, done, out, v, c.policy, &st.counter) || aborted(done) || aborted(g.stopping) {
				return
			}
		}
	})
	return out
}
