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
	switch p {
	case DropNewest:
		select {
		case ch <- v:
			return false, nil
		default:
			return true, nil
		}
	case DropOldest:
		for {
			select {
			case ch <- v:
				return dropped, nil
			default:
			}
			if cap(ch) == 0 {
				return true, nil
			}
			select {
			case <-ch:
				dropped = true
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
