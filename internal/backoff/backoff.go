// Package backoff computes the sleeps of a poller that found nothing: from
// a small minimum, doubling up to a maximum, and back to the minimum as soon
// as it finds work. It keeps no clock and starts no goroutine; the caller
// sleeps (on a timer it selects on together with its ctx and wake-ups).
package backoff

import "time"

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
