package watch

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bpfchan/bpfchan/internal/snapshot"
)

// scripted is a poller that reports a scripted number of changes per poll
// and records when each poll ran. It stands in for a map only to test the
// timing of polls, which needs no kernel.
type scripted struct {
	changes []int         // per poll after the baseline
	cost    time.Duration // how long a poll takes (synctest's clock)
	times   []time.Time
	done    chan struct{}
}

func (s *scripted) Close() error { return nil }

func (s *scripted) Poll(emit snapshot.Emit) (int, error) {
	s.times = append(s.times, time.Now())
	time.Sleep(s.cost)    // a poll's duration, not synchronisation
	i := len(s.times) - 2 // the first poll is the baseline
	if i < 0 || i >= len(s.changes) {
		return 0, nil
	}
	if i == len(s.changes)-1 {
		close(s.done)
	}
	for j := range s.changes[i] {
		if emit != nil {
			emit(snapshot.Updated, []byte{byte(j)}, []byte{0}, []byte{byte(i + 1)})
		}
	}
	return s.changes[i], nil
}

func TestPollSchedule(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name    string
		opt     Option
		changes []int
		gaps    []time.Duration
	}{
		{
			"adaptive",
			WithAdaptive(ms, 8*ms),
			[]int{0, 0, 0, 0, 0, 1, 0, 0, 2, 0},
			[]time.Duration{1 * ms, 2 * ms, 4 * ms, 8 * ms, 8 * ms, 8 * ms, 1 * ms, 2 * ms, 4 * ms, 1 * ms},
		},
		{
			"fixed",
			WithInterval(5 * ms),
			[]int{0, 3, 0, 1},
			[]time.Duration{5 * ms, 5 * ms, 5 * ms, 5 * ms},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, err := newConfig(time.Hour, []Option{tc.opt})
				must(t, err)
				src := &scripted{changes: tc.changes, done: make(chan struct{})}
				decode := func(p *pending) (Kind, error) { return p.kind, nil }
				w := newWatcher(context.Background(), "scripted", src, newQueue(nil), decode, c)
				must(t, w.start(false, nil))
				<-src.done
				closeWatcher(t, w)
				var gaps []time.Duration
				for i := 1; i < len(src.times) && len(gaps) < len(tc.gaps); i++ {
					gaps = append(gaps, src.times[i].Sub(src.times[i-1]))
				}
				if !slices.Equal(gaps, tc.gaps) {
					t.Fatalf("gaps between polls %v, want %v", gaps, tc.gaps)
				}
			})
		})
	}
}

// TestSlowConsumerDoesNotStallPolls checks that polls keep their schedule
// while nobody reads C(), and that the pending events stay one per key.
func TestSlowConsumerDoesNotStallPolls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := newConfig(time.Hour, []Option{WithInterval(time.Millisecond)})
		must(t, err)
		changes := make([]int, 100)
		for i := range changes {
			changes[i] = 4 // keys 0..3 change at every poll
		}
		src := &scripted{changes: changes, done: make(chan struct{})}
		decode := func(p *pending) (Kind, error) { return p.kind, nil }
		w := newWatcher(context.Background(), "scripted", src, newQueue(nil), decode, c)
		must(t, w.start(false, nil))
		<-src.done
		synctest.Wait()
		s := w.Stats()
		if s.Polls < 101 || s.Pending != 4 || s.Changes != 400 || s.Coalesced != 396 {
			t.Fatalf("stats %+v; want 101 polls, 4 pending of 400 changes", s)
		}
		if n := closeWatcher(t, w); n != 4 {
			t.Fatalf("Close delivered %d events, want the 4 pending", n)
		}
		if s := w.Stats(); s.Discarded != 0 || s.Events != 4 || s.Changes != s.Events+s.Coalesced+s.Discarded {
			t.Fatalf("after Close: %+v; want 4 delivered and the books balanced", s)
		}
	})
}

// TestStatsTimes checks Stats.Interval (the pause before the next poll, as
// decided by the poll just made), PollTime and PerPoll.
func TestStatsTimes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := time.Millisecond
		c, err := newConfig(time.Hour, []Option{WithAdaptive(ms, 8*ms)})
		must(t, err)
		src := &scripted{changes: []int{0, 0, 1, 0, 0, 0, 0}, cost: 3 * time.Microsecond, done: make(chan struct{})}
		decode := func(p *pending) (Kind, error) { return p.kind, nil }
		w := newWatcher(context.Background(), "scripted", src, newQueue(nil), decode, c)
		must(t, w.start(false, nil))
		defer closeWatcher(t, w)
		if got := w.Stats().Interval; got != ms {
			t.Fatalf("after the baseline: Interval %v, want %v", got, ms)
		}
		for i, want := range []time.Duration{2 * ms, 4 * ms, ms, 2 * ms, 4 * ms, 8 * ms, 8 * ms} {
			step(t, w)
			if got := w.Stats().Interval; got != want {
				t.Fatalf("after poll %d: Interval %v, want %v", i+1, got, want)
			}
		}
		s := w.Stats()
		if s.Polls != 8 || s.PollTime != 8*src.cost || s.PerPoll() != src.cost {
			t.Fatalf("stats %+v, PerPoll %v; want 8 polls of %v", s, s.PerPoll(), src.cost)
		}
		if (Stats{}).PerPoll() != 0 {
			t.Fatalf("PerPoll without polls: %v, want 0", (Stats{}).PerPoll())
		}
	})
}
