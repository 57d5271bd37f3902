package pipeline

import (
	"fmt"

	"github.com/bpfchan/bpfchan/chans"
)

// Merge passes on every value received from any of ins, each input's values
// in their order. The returned channel is closed once every input is closed,
// or when the group aborts. It panics when ins is empty or holds a nil
// channel.
func Merge[T any](g *Group, ins ...<-chan T) <-chan T {
	if len(ins) == 0 {
		panic("pipeline: Merge with no input")
	}
	for _, in := range ins {
		check(g, "merge", in)
	}
	out := make(chan T)
	output(g, out)
	st := g.newStage("merge", config{workers: len(ins)}, lenOf(out), nil)
	exit := closeWhenDone(len(ins), out)
	for _, in := range ins {
		g.spawn(func() { // exits when in is closed or the group aborts; the last one out closes out
			ctx := g.ctx
			done := ctx.Done()
			forward(g, st, in, func(v T) bool { return send(ctx, done, out, v, chans.Block, &st.counter) })
			exit()
		})
	}
	return out
}

// Tee passes every value received from in on to each of n outputs, in order
// on each. By default a branch whose consumer is slow holds the others back
// (chans.Block); give it a buffer and a drop policy with [Branch] (or to all
// branches with Buffer and Overflow) and it drops instead, counted in
// [StageStats].Branches. It panics when n < 1. Options: Buffer, Overflow,
// Branch, Name.
func Tee[T any](g *Group, in <-chan T, n int, opts ...StageOption) []<-chan T {
	return fanOut(g, "tee", in, n, opts, nil)
}

// Shard passes every value received from in to output key(v) mod n (a
// negative remainder is wrapped), so values with the same key reach the same
// output in their order. A full output holds the others back unless it drops
// ([Branch], Overflow). key runs in the stage's goroutine and must not block.
// It panics when n < 1 or key is nil. Options: Buffer, Overflow, Branch, Name.
func Shard[T any](g *Group, in <-chan T, n int, key func(T) int, opts ...StageOption) []<-chan T {
	if key == nil {
		panic("pipeline: Shard with a nil key function")
	}
	return fanOut(g, "shard", in, n, opts, key)
}

// fanOut is Tee (key nil: every output) and Shard (one output per value).
func fanOut[T any](g *Group, kind string, in <-chan T, n int, opts []StageOption, key func(T) int) []<-chan T {
	check(g, kind, in)
	if n < 1 {
		panic(fmt.Sprintf("pipeline: %s into %d outputs: need at least 1", kind, n))
	}
	c := configure(kind, optBuffer|optOverflow|optBranch|optName, opts)
	branches := c.branchConfigs(kind, n)
	outs := make([]chan T, n)
	ret := make([]<-chan T, n)
	queued := make([]func() int, n)
	for i, b := range branches {
		outs[i] = make(chan T, b.buffer)
		output(g, outs[i])
		ret[i] = outs[i]
		queued[i] = lenOf(outs[i])
	}
	st := g.newStage(kind, c, nil, queued)
	g.spawn(func() { // exits when in is closed or the group aborts
		defer func() {
			for _, o := range outs {
				close(o)
			}
		}()
		ctx := g.ctx
		done := ctx.Done()
		forward(g, st, in, func(v T) bool {
			if key != nil {
				i := key(v) % n
				if i < 0 {
					i += n
				}
				return send(ctx, done, outs[i], v, branches[i].policy, &st.branches[i])
			}
			for i, o := range outs {
				if !send(ctx, done, o, v, branches[i].policy, &st.branches[i]) {
					return false
				}
			}
			return true
		})
	})
	return ret
}
