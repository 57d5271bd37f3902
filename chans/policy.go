package chans

import (
	"context"
	"strconv"
)

// Policy is what a producer does when its output channel is full.
type Policy uint8

const (
	// Block waits for the consumer (the default).
	Block Policy = iota
	// DropNewest drops the value that does not fit, and counts it.
	DropNewest
	// DropOldest evicts the oldest buffered value to make room, and counts it.
	DropOldest
)

func (p Policy) String() string {
	switch p {
	case Block:
		return "block"
	case DropNewest:
		return "drop-newest"
	case DropOldest:
		return "drop-oldest"
	}
	return "policy(" + strconv.Itoa(int(p)) + ")"
}

// Offer sends v on ch, which the caller owns, under policy p. It returns
// dropped=true when a value was dropped to apply the policy: v itself
// (DropNewest, or DropOldest on an unbuffered channel with no receiver ready)
// or the oldest buffered value (DropOldest). With Block it waits for a
// receiver or for ctx, and then returns context.Cause(ctx).
//
// Offer is the one overflow mechanism shared by pumps and pipeline stages.
// DropOldest needs the producer to be ch's only sender.
func Offer[T any](ctx context.Context, ch chan T, v T, p Policy) (dropped bool, err error) {
	return OfferFunc(ctx, ch, v, p, nil)
}

// OfferFunc is Offer for a producer that must account for what it drops:
// onDrop (when not nil) is called with each dropped value, evicted=true when
// it is an older value taken back out of ch's buffer (it was sent before),
// false when it is v itself.
func OfferFunc[T any](ctx context.Context, ch chan T, v T, p Policy, onDrop func(d T, evicted bool)) (dropped bool, err error) {
	drop := func(d T, evicted bool) {
		dropped = true
		if onDrop != nil {
			onDrop(d, evicted)
		}
	}
	switch p {
	case DropNewest:
		select {
		case ch <- v:
		default:
			drop(v, false)
		}
		return dropped, nil
	case DropOldest:
		for {
			select {
			case ch <- v:
				return dropped, nil
			default:
			}
			if cap(ch) == 0 {
				drop(v, false)
				return dropped, nil
			}
			select {
			case old := <-ch:
				drop(old, true)
			default:
			}
		}
	default:
		select {
		case ch <- v:
			return false, nil
		case <-ctx.Done():
			return false, context.Cause(ctx)
		}
	}
}
