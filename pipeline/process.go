package pipeline

import (
	"context"

	"github.com/bpfchan/bpfchan/chans"
)

// Map passes f(ctx, v) on for every v received from in. The returned channel
// is closed when in is closed and every value is passed on, or when the
// group aborts. An error from f aborts the group and is returned by Wait as a
// *StageError. Options: Workers, Ordered, Buffer, Overflow, Name.
func Map[In, Out any](g *Group, in <-chan In, f func(context.Context, In) (Out, error), opts ...StageOption) <-chan Out {
	if f == nil {
		panic("pipeline: Map with a nil function")
	}
	return process(g, "map", in, true, opts, func(ctx context.Context, v In) (Out, bool, error) {
		o, err := f(ctx, v)
		return o, true, err
	})
}

// Filter passes on the values for which keep returns true, in the order they
// arrive (with Workers(n > 1), in completion order unless Ordered). An error
// from keep aborts the group. Options: Workers, Ordered, Buffer, Overflow,
// Name.
func Filter[T any](g *Group, in <-chan T, keep func(context.Context, T) (bool, error), opts ...StageOption) <-chan T {
	if keep == nil {
		panic("pipeline: Filter with a nil function")
	}
	return process(g, "filter", in, true, opts, func(ctx context.Context, v T) (T, bool, error) {
		ok, err := keep(ctx, v)
		return v, ok, err
	})
}

// ForEach calls f for every value received from in: it is a sink, and ends
// when in is closed or the group aborts. An error from f aborts the group.
// Options: Workers (f then runs concurrently, in no particular order), Name.
func ForEach[T any](g *Group, in <-chan T, f func(context.Context, T) error, opts ...StageOption) {
	if f == nil {
		panic("pipeline: ForEach with a nil function")
	}
	process(g, "foreach", in, false, opts, func(ctx context.Context, v T) (struct{}, bool, error) {
		return struct{}{}, false, f(ctx, v)
	})
}

// step is the per-value work of Map, Filter and ForEach: the value to pass
// on, and whether to pass it.
type step[In, Out any] func(ctx context.Context, v In) (Out, bool, error)

// process starts the workers of a Map, Filter or ForEach stage and returns
// its output (nil for ForEach).
func process[In, Out any](g *Group, kind string, in <-chan In, hasOut bool, opts []StageOption, f step[In, Out]) <-chan Out {
	check(g, kind, in)
	allowed := optWorkers | optName
	if hasOut {
		allowed |= optOrdered | optBuffer | optOverflow
	}
	c := configure(kind, allowed, opts)
	var out chan Out
	var queued func() int
	if hasOut {
		out = make(chan Out, c.buffer)
		output(g, out)
		queued = lenOf(out)
	}
	st := g.newStage(kind, c, queued, nil)
	if c.workers > 1 && c.ordered {
		ordered(g, st, c, in, out, f)
		return out
	}
	exit := closeWhenDone(c.workers, out)
	for i := range c.workers {
		g.start(func() error { // exits when in is closed, the group aborts, or f fails; the last one out closes out
			err := g.failure(st.name, work(g, st, i, c.policy, in, out, f))
			exit() // after the abort, if f failed: downstream must not take the close for the input's end
			return err
		})
	}
	return out
}

// work is one worker's loop. It returns when in is closed, when the group
// aborts, or with f's error.
func work[In, Out any](g *Group, st *stage, worker int, p chans.Policy, in <-chan In, out chan Out, f step[In, Out]) error {
	ctx := g.ctx
	done := ctx.Done()
	clock := st.clock(worker)
	var err error
	forward(g, st, in, func(v In) bool {
		start, timed := clock.start()
		o, keep, ferr := f(ctx, v)
		if timed {
			clock.stop(&st.busy, start)
		}
		if ferr != nil {
			st.errors.Add(1)
			err = ferr
			return false
		}
		return !keep || out == nil || send(ctx, done, out, o, p, &st.counter)
	})
	return err
}

// slot carries one value through an ordered stage: from the dispatcher to a
// worker, and in input order to the collector.
type slot[In, Out any] struct {
	in    In
	out   Out
	keep  bool
	ready chan struct{} // capacity 1: the worker's "done", never blocks
}

// ordered runs n workers whose results leave in input order. A dispatcher
// hands each value to a worker in a recycled slot and queues the slot in
// order; a collector takes the slots in that order, waits for each to be
// ready, and passes its result on. 2n slots bound the values in flight and
// make the steady state allocation-free.
func ordered[In, Out any](g *Group, st *stage, c config, in <-chan In, out chan Out, f step[In, Out]) {
	ctx := g.ctx
	done := ctx.Done()
	inDone := g.inputDone(in)
	n := c.workers
	free := make(chan *slot[In, Out], 2*n)
	for range 2 * n {
		free <- &slot[In, Out]{ready: make(chan struct{}, 1)}
	}
	jobs := make(chan *slot[In, Out], n)
	queue := make(chan *slot[In, Out], 2*n) // never blocks: it holds at most 2n slots

	g.spawn(func() { // dispatcher: exits when in is closed or the group aborts
		defer close(queue)
		defer close(jobs)
		for {
			s, ok := recv(free, done)
			if !ok {
				return
			}
			v, ok := recv(in, inDone)
			if !ok {
				return
			}
			st.in.Add(1)
			if aborted(done) {
				return
			}
			s.in = v
			queue <- s
			select {
			case jobs <- s:
			case <-done:
				return
			}
		}
	})
	for i := range n {
		g.start(func() error { // worker: exits when jobs is closed, the group aborts, or f fails
			return g.failure(st.name, func() error {
				clock := st.clock(i)
				for {
					s, ok := recv(jobs, done)
					if !ok || aborted(done) {
						return nil
					}
					start, timed := clock.start()
					var err error
					s.out, s.keep, err = f(ctx, s.in)
					if timed {
						clock.stop(&st.busy, start)
					}
					if err != nil {
						st.errors.Add(1)
						return err
					}
					s.ready <- struct{}{}
				}
			}())
		})
	}
	g.spawn(func() { // collector: exits when the queue is drained or the group aborts
		defer close(out)
		var zero slot[In, Out]
		for {
			s, ok := recv(queue, done)
			if !ok {
				return
			}
			if _, ok := recv(s.ready, done); !ok {
				return
			}
			if s.keep && !send(ctx, done, out, s.out, c.policy, &st.counter) {
				return
			}
			s.in, s.out, s.keep = zero.in, zero.out, false // drop references
			free <- s
		}
	})
}

// check panics on a nil group or input channel: programmer errors.
func check[T any](g *Group, kind string, in <-chan T) {
	if g == nil {
		panic("pipeline: " + kind + " with a nil Group")
	}
	if in == nil {
		panic("pipeline: " + kind + " with a nil input channel")
	}
}
