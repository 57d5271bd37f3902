// Package backoff computes the sleeps of a poller that found nothing: from
// a small minimum, doubling up to a maximum, and back to the minimum as soon
// as it finds work. It starts no goroutine. A Backoff keeps no clock: the
// caller sleeps, usually with a Sleeper, which waits on one reusable timer
// together with a wake-up channel, a stop channel and ctx.
package backoff

import (
	"context"
	"time"
)

// Backoff is an exponential backoff between Min and Max. The zero value is
// not useful; set Min and Max (Min > 0, Max >= Min).
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Next returns the next sleep: Min first, then twice the previous one,
// never more than Max.
func (b *Backoff) Next() time.Duration {
	switch {
	case b.cur == 0:
		b.cur = b.Min
	case b.cur < b.Max:
		b.cur = min(2*b.cur, b.Max)
	}
	return b.cur
}

// Reset starts the next Next at Min again.
func (b *Backoff) Reset() { b.cur = 0 }

// Result says why Sleeper.Sleep returned.
type Result uint8

const (
	Slept     Result = iota // the whole sleep passed
	Woken                   // the wake channel was closed
	Stopped                 // the stop channel was closed
	Cancelled               // ctx is done
)

// Sleeper sleeps out a Backoff's sleeps on one reusable timer (no
// allocation per sleep), cut short by a wake-up, a stop or ctx: the wait
// shared by the pollers that find a map empty and the writers that find it
// full. The zero value is ready once Backoff is set; it is not safe for
// concurrent use.
type Sleeper struct {
	Backoff
	timer *time.Timer
}

// Sleep sleeps for Next(), returning early when wake or stop is closed or
// ctx is done (a nil channel never fires). It does not Reset the backoff:
// the caller does when it finds work.
func (s *Sleeper) Sleep(ctx context.Context, wake, stop <-chan struct{}) Result {
	d := s.Next()
	if s.timer == nil {
		s.timer = time.NewTimer(d)
	} else {
		s.timer.Reset(d)
	}
	defer s.timer.Stop()
	select {
	case <-s.timer.C:
		return Slept
	case <-wake:
		return Woken
	case <-stop:
		return Stopped
	case <-ctx.Done():
		return Cancelled
	}
}
