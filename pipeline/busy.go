package pipeline

import (
	"math"
	"sync/atomic"
	"time"
)

// epoch is the origin of the monotonic clock readings that time callbacks:
// time.Since(epoch) reads one clock, time.Now two.
var epoch = time.Now()

// Reading the clock costs about as much as a trivial callback, so a worker
// times every callback while they take at least longCallback, and otherwise
// one in sampleEvery, counted for the sampleEvery callbacks since the last
// timed one.
const (
	longCallback = 2 * time.Microsecond
	sampleEvery  = 16
)

// idle is a worker's running slot when no timed callback is in progress.
const idle = math.MinInt64

// busyClock is one worker's timing of its callbacks, for StageStats.Busy.
// Its first callback is timed; it samples while they are short.
type busyClock struct {
	n       uint32        // callbacks since the last timed one, this one included
	sampled bool          // the last timed callback was short
	running *atomic.Int64 // the start of the timed callback in progress, or idle
}

// clock returns worker i's clock for st.
func (st *stage) clock(i int) busyClock { return busyClock{running: &st.running[i]} }

// start returns the clock reading before a callback, and whether this
// callback is timed.
func (c *busyClock) start() (time.Duration, bool) {
	c.n++
	if c.sampled && c.n < sampleEvery {
		return 0, false
	}
	t := time.Since(epoch)
	c.running.Store(int64(t))
	return t, true
}

// stop adds the timed callback begun at start, standing for the c.n
// callbacks since the last timed one, to busy.
func (c *busyClock) stop(busy *atomic.Int64, start time.Duration) {
	d := time.Since(epoch) - start
	busy.Add(int64(d) * int64(c.n))
	c.running.Store(idle)
	c.n = 0
	c.sampled = d < longCallback
}
