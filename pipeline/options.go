package pipeline

import (
	"fmt"

	"github.com/bpfchan/bpfchan/chans"
)

// A StageOption tunes one stage. Each stage accepts the options that make
// sense for it and panics at construction on one that does not (Workers on a
// Batch, Buffer on a ForEach, which has no output): a nonsensical
// combination is a programmer error, not a silent default.
type StageOption func(*config)

// config is a stage's settings; its zero value (with workers 1) is the
// default.
type config struct {
	set      optionSet
	workers  int
	ordered  bool
	buffer   int
	policy   chans.Policy
	name     string
	branches []branchOption
}

type branchOption struct {
	i    int
	opts []StageOption
}

type optionSet uint8

const (
	optWorkers optionSet = 1 << iota
	optOrdered
	optBuffer
	optOverflow
	optName
	optBranch
)

var optionNames = [...]string{"Workers", "Ordered", "Buffer", "Overflow", "Name", "Branch"}

// Workers runs a stage's callback in n goroutines. The default is 1: one
// worker keeps order and never runs the callback concurrently. With n > 1
// values leave in completion order unless [Ordered] is also given. It panics
// when n < 1. Map, Filter and ForEach accept it.
func Workers(n int) StageOption {
	if n < 1 {
		panic(fmt.Sprintf("pipeline: Workers(%d): need at least 1", n))
	}
	return func(c *config) { c.set |= optWorkers; c.workers = n }
}

// Ordered makes a stage with several workers emit its results in input order.
// A result that is ready early waits for the ones before it, so at most 2n
// values are in flight. Map and Filter accept it.
func Ordered() StageOption {
	return func(c *config) { c.set |= optOrdered; c.ordered = true }
}

// Buffer gives a stage's output channel (each output, for Tee and Shard) a
// capacity of n; the default is 0. It panics when n < 0.
func Buffer(n int) StageOption {
	if n < 0 {
		panic(fmt.Sprintf("pipeline: Buffer(%d): negative capacity", n))
	}
	return func(c *config) { c.set |= optBuffer; c.buffer = n }
}

// Overflow sets what a stage does when its output is full: wait
// (chans.Block, the default) or drop a value and count it in
// [StageStats].Dropped (chans.DropNewest, chans.DropOldest), as
// pump.WithOverflow does. DropOldest evicts from the output's buffer, so it
// needs [Buffer](n > 0) (on a Tee or a Shard, for every output it applies
// to), and a single sender, so it cannot be combined with unordered
// Workers(n > 1); the stage panics when built otherwise, as a pump's
// constructor refuses the same with an error. DropNewest on an unbuffered
// output drops every value no receiver is waiting for.
func Overflow(p chans.Policy) StageOption {
	switch p {
	case chans.Block, chans.DropNewest, chans.DropOldest:
	default:
		panic(fmt.Sprintf("pipeline: Overflow(%v): unknown policy", p))
	}
	return func(c *config) { c.set |= optOverflow; c.policy = p }
}

// Name names a stage in its [StageError] and [StageStats]. The default is the
// stage's kind and its number in the order the group's stages were built
// (From included), such as "map#2".
func Name(s string) StageOption {
	if s == "" {
		panic("pipeline: Name with an empty name")
	}
	return func(c *config) { c.set |= optName; c.name = s }
}

// Branch applies opts (Buffer and Overflow only) to output i of a Tee or a
// Shard, overriding the stage's own. A Tee whose slow branch drops keeps its
// other branches flowing:
//
//	outs := pipeline.Tee(g, in, 2, pipeline.Branch(1, pipeline.Buffer(64), pipeline.Overflow(chans.DropNewest)))
func Branch(i int, opts ...StageOption) StageOption {
	if i < 0 {
		panic(fmt.Sprintf("pipeline: Branch(%d): negative index", i))
	}
	return func(c *config) { c.set |= optBranch; c.branches = append(c.branches, branchOption{i, opts}) }
}

// configure applies opts for a stage of the given kind, panicking on an
// option the kind does not take or cannot honour. A stage with branches
// (allowed includes Branch) has its buffers checked per output, by
// branchConfigs.
func configure(kind string, allowed optionSet, opts []StageOption) config {
	c := apply(kind, allowed, opts)
	if c.policy == chans.DropOldest && c.workers > 1 && !c.ordered {
		panic(fmt.Sprintf("pipeline: %s: Overflow(%v) needs a single sender: add Ordered() or use one worker", kind, c.policy))
	}
	if allowed&optBranch == 0 {
		c.checkBuffer(kind)
	}
	return c
}

// apply applies opts, panicking on a nil one or one not in allowed.
func apply(kind string, allowed optionSet, opts []StageOption) config {
	c := config{workers: 1}
	for _, o := range opts {
		if o == nil {
			panic("pipeline: " + kind + " with a nil StageOption")
		}
		o(&c)
	}
	if bad := c.set &^ allowed; bad != 0 {
		for i, n := range optionNames {
			if bad&(1<<i) != 0 {
				panic("pipeline: " + kind + " does not take the " + n + " option")
			}
		}
	}
	return c
}

// checkBuffer panics when c drops the oldest value of an unbuffered output:
// there is nothing to evict, so it would act as DropNewest.
func (c config) checkBuffer(what string) {
	if c.policy == chans.DropOldest && c.buffer == 0 {
		panic(fmt.Sprintf("pipeline: %s: Overflow(%v) needs Buffer(n > 0): an unbuffered output holds nothing to evict", what, c.policy))
	}
}

// branchConfigs returns the buffer and policy of each of n outputs, and
// panics on one that cannot honour them.
func (c config) branchConfigs(kind string, n int) []config {
	out := make([]config, n)
	for i := range out {
		out[i] = config{buffer: c.buffer, policy: c.policy}
	}
	for _, b := range c.branches {
		if b.i >= n {
			panic(fmt.Sprintf("pipeline: %s: Branch(%d) of %d outputs", kind, b.i, n))
		}
		bc := apply(kind+" branch", optBuffer|optOverflow, b.opts)
		if bc.set&optBuffer != 0 {
			out[b.i].buffer = bc.buffer
		}
		if bc.set&optOverflow != 0 {
			out[b.i].policy = bc.policy
		}
	}
	for i, b := range out {
		b.checkBuffer(fmt.Sprintf("%s output %d", kind, i))
	}
	return out
}
