package pipeline

import (
	"context"
	"sync/atomic"

	"github.com/bpfchan/bpfchan/chans"
)

// recv receives from in, or reports ok=false when in is closed or done is
// closed first. A nil done is a plain receive: see [Group.inputDone]. The
// non-blocking attempt first keeps the common case (a value is waiting) on
// the channel's fast path.
func recv[T any](in <-chan T, done <-chan struct{}) (v T, ok bool) {
	if done == nil {
		v, ok = <-in
		return v, ok
	}
	select {
	case v, ok = <-in:
		return v, ok
	default:
	}
	select {
	case v, ok = <-in:
		return v, ok
	case <-done:
		return v, false
	}
}

// forward is the loop of every stage goroutine that takes its values one at
// a time (Map, Filter and ForEach workers, Merge, Tee, Shard, To): it
// receives from in (see recv), counts each value in st.In and hands it to
// put, until in is closed, the group aborts, or put returns false. A value
// received after the abort began is counted but not handed on: no new work
// starts after an abort, and nothing more reaches a sink.
func forward[T any](g *Group, st *stage, in <-chan T, put func(T) bool) {
	done := g.ctx.Done()
	inDone := g.inputDone(in)
	for {
		v, ok := recv(in, inDone)
		if !ok {
			return
		}
		st.in.Add(1)
		if aborted(done) || !put(v) {
			return
		}
	}
}

// closeWhenDone returns what each of n goroutines sending on out calls as it
// exits: the last one out closes out (when not nil).
func closeWhenDone[T any](n int, out chan T) func() {
	var running atomic.Int32
	running.Store(int32(n))
	return func() {
		if running.Add(-1) == 0 && out != nil {
			close(out)
		}
	}
}

// aborted reports whether done is closed: a worker's check before new work.
func aborted(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// send passes v on out under policy p and counts it in c. It returns false
// when the group's context was done before a blocking send completed.
//
// Block is the same select chans.Offer makes, with a non-blocking attempt
// first; the drop policies go through chans.OfferFunc, the one overflow
// mechanism pumps and stages share, which reports each value it drops: v
// itself, or an older value evicted from out's buffer, which was counted out
// when it went in and is now counted dropped instead.
func send[T any](ctx context.Context, done <-chan struct{}, out chan T, v T, p chans.Policy, c *counter) bool {
	if p == chans.Block {
		select {
		case out <- v:
			c.out.Add(1)
			return true
		default:
		}
		select {
		case out <- v:
			c.out.Add(1)
			return true
		case <-done:
			return false
		}
	}
	in := true // v went in
	_, err := chans.OfferFunc(ctx, out, v, p, func(_ T, evicted bool) {
		c.dropped.Add(1)
		if evicted {
			c.out.Add(^uint64(0)) // -1
		} else {
			in = false
		}
	})
	if err != nil {
		return false
	}
	if in {
		c.out.Add(1)
	}
	return true
}
