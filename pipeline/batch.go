package pipeline

import (
	"fmt"
	"time"
)

// Batch groups the values received from in into slices of at most size. A
// batch is passed on when it holds size values; when its oldest value has
// waited maxAge (a timer armed by the batch's first value and never reset by
// later ones, so a steady trickle still flushes every maxAge); or, partial,
// when in is closed. A maxAge of 0 means no age flush: a batch waits for
// size values or the end of in however long that takes, as with
// pump.WithBatch(size, 0). On abort the batch in hand is discarded. Every
// batch is a new slice the receiver owns. It panics when size < 1 or
// maxAge < 0. Options: Buffer, Overflow, Name.
func Batch[T any](g *Group, in <-chan T, size int, maxAge time.Duration, opts ...StageOption) <-chan []T {
	check(g, "batch", in)
	if size < 1 {
		panic(fmt.Sprintf("pipeline: Batch(size %d): need at least 1", size))
	}
	if maxAge < 0 {
		panic(fmt.Sprintf("pipeline: Batch(maxAge %v): negative; 0 means no age flush", maxAge))
	}
	c := configure("batch", optBuffer|optOverflow|optName, opts)
	out := make(chan []T, c.buffer)
	output(g, out)
	st := g.newStage("batch", c, lenOf(out), nil)
	g.spawn(func() { // exits when in is closed (after the last flush) or the group aborts
		defer close(out)
		ctx := g.ctx
		done := ctx.Done()
		var (
			batch []T
			timer *time.Timer
			aged  <-chan time.Time // nil while the batch is empty or maxAge is 0
		)
		if maxAge > 0 {
			timer = time.NewTimer(maxAge)
			timer.Stop()
			defer timer.Stop()
		}
		flush := func() bool {
			if aged != nil {
				timer.Stop() // no stale tick after Stop (Go 1.23 timers)
				aged = nil
			}
			b := batch
			batch = nil
			return send(ctx, done, out, b, c.policy, &st.counter)
		}
		for {
			select {
			case v, ok := <-in:
				if !ok {
					if len(batch) > 0 && !aborted(done) {
						flush()
					}
					return
				}
				st.in.Add(1)
				if aborted(done) {
					return
				}
				if batch == nil {
					batch = make([]T, 0, size)
					if timer != nil {
						timer.Reset(maxAge)
						aged = timer.C
					}
				}
				batch = append(batch, v)
				if len(batch) == size && !flush() {
					return
				}
			case <-aged:
				aged = nil
				if !flush() {
					return
				}
			case <-done:
				return
			}
		}
	})
	return out
}
