package pipeline

import (
	"context"

	"github.com/bpfchan/bpfchan/chans"
)

// recv receives from in, or reports ok=false when in is closed or done is
// closed first. The non-blocking attempt first keeps the common case (a value
// is waiting) on the channel's fast path.
func recv[T any](in <-chan T, done <-chan struct{}) (v T, ok bool) {
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
// first; the drop policies go through chans.Offer, the one overflow
// mechanism pumps and stages share.
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
	dropped, err := chans.Offer(ctx, out, v, p)
	switch {
	case err != nil:
		return false
	case !dropped:
		c.out.Add(1)
	case p == chans.DropOldest && cap(out) > 0:
		// v went in and evicted an older value counted out when it went in:
		// Out is unchanged (one in, one out), the evicted value is dropped.
		c.dropped.Add(1)
	default:
		c.dropped.Add(1)
	}
	return true
}
