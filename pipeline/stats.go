package pipeline

import (
	"fmt"
	"sync/atomic"
	"time"
)

// StageStats is a snapshot of one stage's counters, readable while the
// pipeline runs (see [Group.Stats]). A stage whose Busy is close to its
// lifetime times Workers is the bottleneck; one whose outputs are full shows
// it as Dropped (with a drop policy) or as a Busy far below that.
//
// Busy times every callback of 2 µs or more, from a worker's first one, and
// includes the time so far of a callback still running, so a stuck callback
// shows. Reading the clock costs as much as a trivial callback, so while
// callbacks are shorter a worker times one in 16 and counts it for the 16:
// an estimate, right on average. A snapshot taken just as a callback ends
// may miss that callback's time; the next one has it. Map, Filter and
// ForEach have callbacks; Shard's key function is not timed.
type StageStats struct {
	Name    string
	Workers int
	In      uint64        // values received from the input(s)
	Out     uint64        // values passed on (Batch: batches), summed over all outputs
	Dropped uint64        // values dropped by an Overflow policy (Batch: batches), summed over all outputs
	Busy    time.Duration // time spent in user callbacks, summed over workers (see below)
	Errors  uint64        // callbacks that returned an error (To: its Sender failed); the first one stops the Group

	// Buffered is how many values sit in the buffers of the stage's output
	// channels at the snapshot, summed over all outputs: passed on (counted
	// in Out) and not yet taken by the consumer. Batch counts batches; To
	// counts the values in its Sender's C(); ForEach has no output and
	// Merge an unbuffered one, so theirs is 0. A Buffered that stays near
	// the capacity given by [Buffer] shows a consumer that does not keep up.
	Buffered int

	// Branches holds each output's counters for Tee and Shard; nil otherwise.
	Branches []BranchStats
}

// BranchStats counts one output of a Tee or a Shard.
type BranchStats struct {
	Out      uint64
	Dropped  uint64
	Buffered int
}

// Stats returns a snapshot of every stage's counters, in the order the stages
// were built ([From] is not a stage here: it adds no hop, and the adopted
// pump's or watcher's own Stats count what it delivered).
//
// Once a stage with one output (Map, Filter, Merge, FromSeq, To) has
// exited, In − Out − Dropped is what it filtered out or, in an abort,
// abandoned. A Shard's outputs share its input, so the same holds with Out
// and Dropped summed over its branches. A Tee passes each value to every
// branch: for each branch, In − Out − Dropped is what it abandoned, and the
// stage's Out and Dropped are n times larger. A Batch counts values in but
// batches out and dropped. ForEach has no output: Out is 0.
func (g *Group) Stats() []StageStats {
	g.mu.Lock()
	stages := append([]*stage(nil), g.stages...)
	g.mu.Unlock()
	out := make([]StageStats, len(stages))
	for i, s := range stages {
		out[i] = s.snapshot()
	}
	return out
}

// stage holds one stage's name and counters. Counters are atomics: workers
// update them, Stats reads them at any time.
type stage struct {
	name     string
	workers  int
	in       atomic.Uint64
	counter  // the single output's counters
	busy     atomic.Int64
	errors   atomic.Uint64
	running  []atomic.Int64 // per worker: the start of a timed callback in progress, or idle
	branches []counter      // Tee and Shard outputs
}

// counter counts what went out of one output.
type counter struct {
	out     atomic.Uint64
	dropped atomic.Uint64
	queued  func() int // the output channel's len; nil for no output
}

// buffered returns how many values sit in the output's buffer.
func (c *counter) buffered() int {
	if c.queued == nil {
		return 0
	}
	return c.queued()
}

// lenOf returns a function that reports how many values sit in ch's buffer.
func lenOf[T any](ch chan<- T) func() int { return func() int { return len(ch) } }

// newStage registers a stage of the given kind with the group, complete
// before Stats can see it. queued reports the length of its one output (nil
// for ForEach, which has none); branches, those of each output of a Tee or a
// Shard, which gets a counter per branch.
func (g *Group) newStage(kind string, c config, queued func() int, branches []func() int) *stage {
	g.mu.Lock()
	defer g.mu.Unlock()
	name := g.name(kind, c)
	s := &stage{name: name, workers: c.workers, running: make([]atomic.Int64, c.workers)}
	for i := range s.running {
		s.running[i].Store(idle)
	}
	s.queued = queued
	if branches != nil {
		s.branches = make([]counter, len(branches))
		for i, q := range branches {
			s.branches[i].queued = q
		}
	}
	g.stages = append(g.stages, s)
	return s
}

// name returns a stage's name, given or by default its kind and its number
// in the order stages were built, and counts the stage. The caller holds
// g.mu.
func (g *Group) name(kind string, c config) string {
	g.built++
	if c.name != "" {
		return c.name
	}
	return fmt.Sprintf("%s#%d", kind, g.built)
}

func (s *stage) snapshot() StageStats {
	st := StageStats{
		Name:     s.name,
		Workers:  s.workers,
		In:       s.in.Load(),
		Out:      s.out.Load(),
		Dropped:  s.dropped.Load(),
		Busy:     time.Duration(s.busy.Load()),
		Errors:   s.errors.Load(),
		Buffered: s.buffered(),
	}
	for i := range s.running {
		if start := s.running[i].Load(); start != idle {
			st.Busy += time.Since(epoch) - time.Duration(start)
		}
	}
	if s.branches != nil {
		st.Branches = make([]BranchStats, len(s.branches))
		for i := range s.branches {
			c := &s.branches[i]
			b := BranchStats{Out: c.out.Load(), Dropped: c.dropped.Load(), Buffered: c.buffered()}
			st.Branches[i] = b
			st.Out += b.Out
			st.Dropped += b.Dropped
			st.Buffered += b.Buffered
		}
	}
	return st
}
