package pipeline

import (
	"iter"
	"sync/atomic"

	"github.com/bpfchan/bpfchan/chans"
)

// To feeds the values received from in to s, a pump's sink: when in is
// closed, or the group aborts, it closes s.C() and waits for s to push what
// it received. An error from s's Wait becomes a *StageError unless the group
// was already aborting. Create s with the group's context, so that an abort
// also stops a push that waits on a full map.
//
// A sink may stop by itself (a push into a full map with pump.FullFail, a
// sink with a context of its own): To then stops sending at once, and the
// sink's error aborts the group. A sink that stops with no error before in
// is closed fails the stage with [ErrSinkStopped].
func To[T any](g *Group, in <-chan T, s chans.Sender[T]) {
	check(g, "to", in)
	if s == nil {
		panic("pipeline: To with a nil Sender")
	}
	sc := s.C()
	if sc == nil {
		panic("pipeline: To a Sender whose C() is nil")
	}
	st := g.newStage("to", config{workers: 1}, lenOf(sc), nil)
	var closed atomic.Bool // set before To closes sc: the sink may end from now on
	sinkDone := make(chan struct{})
	g.start(func() error { // exits when s has stopped
		err := s.Wait()
		if err == nil && !closed.Load() {
			err = ErrSinkStopped
		}
		if err != nil {
			st.errors.Add(1)
		}
		close(sinkDone)
		return g.failure(st.name, err)
	})
	g.spawn(func() { // exits when in is closed, the group aborts or s stops, once s has stopped
		done := g.ctx.Done()
		forward(g, st, in, func(v T) bool {
			select {
			case sc <- v:
				st.out.Add(1)
				return true
			case <-done:
				return false
			case <-sinkDone:
				return false
			}
		})
		closed.Store(true)
		close(sc)
		<-sinkDone
	})
}

// All iterates over the values received from in, the end of a pipeline, in
// the caller's goroutine. When in is closed (or the group aborts) it waits
// for the group and, if Wait reports an error, yields it once with a zero
// value, so a loop sees every failure:
//
//	for v, err := range pipeline.All(g, out) {
//		if err != nil {
//			return err
//		}
//		use(v)
//	}
//
// Breaking out of the loop (or a panic in its body) aborts the group and
// waits for it before the loop statement completes, so no stage outlives the
// loop and nothing drains a source that never ends; the group's Wait then
// returns nil unless a stage had failed before. Because All waits for the
// whole group, every other output of the group must be consumed elsewhere.
func All[T any](g *Group, in <-chan T) iter.Seq2[T, error] {
	check(g, "All", in)
	return func(yield func(T, error) bool) {
		finished := false
		defer func() {
			if !finished {
				g.abort(errBroken)
				g.Wait()
			}
		}()
		done := g.ctx.Done()
		inDone := g.inputDone(in)
		for {
			v, ok := recv(in, inDone)
			if !ok || aborted(done) {
				break
			}
			if !yield(v, nil) {
				return
			}
		}
		finished = true
		if err := g.Wait(); err != nil {
			var zero T
			yield(zero, err)
		}
	}
}
