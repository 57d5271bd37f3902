package pipeline_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bpfchan/bpfchan/pipeline"
)

// TestBusy checks StageStats.Busy against callbacks of known length, under
// synctest's clock: slow callbacks are each timed from the first one, short
// ones are sampled without counting any callback twice.
func TestBusy(t *testing.T) {
	noLeaks(t)
	tests := []struct {
		name string
		n    int
		d    time.Duration // each callback's length
	}{
		{"slow", 10, 50 * time.Millisecond},
		// Sampled: the first callback is timed, then one in 16 counts for
		// the 16 since; 1+16k callbacks are covered exactly.
		{"short", 1 + 16*10, 200 * time.Nanosecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g, _ := pipeline.New(t.Context())
				out := pipeline.Map(g, pipeline.FromSeq(g, upTo(tt.n)), func(_ context.Context, v int) (int, error) {
					time.Sleep(tt.d)
					return v, nil
				})
				pipeline.ForEach(g, out, func(context.Context, int) error { return nil })
				if err := g.Wait(); err != nil {
					t.Fatal(err)
				}
				if got, want := g.Stats()[1].Busy, time.Duration(tt.n)*tt.d; got != want {
					t.Errorf("Busy %v after %d callbacks of %v, want %v", got, tt.n, tt.d, want)
				}
			})
		})
	}
}

// TestBusyRunning: a callback that is still running counts in Busy.
func TestBusyRunning(t *testing.T) {
	noLeaks(t)
	synctest.Test(t, func(t *testing.T) {
		g, _ := pipeline.New(t.Context())
		release := make(chan struct{})
		pipeline.ForEach(g, pipeline.FromSeq(g, upTo(1)), func(context.Context, int) error {
			<-release // stuck until the test has looked
			return nil
		})
		synctest.Wait()
		time.Sleep(time.Second) // the callback has now run for a second
		if got := g.Stats()[1].Busy; got != time.Second {
			t.Errorf("Busy %v while the callback runs for 1s, want 1s", got)
		}
		close(release)
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		if got := g.Stats()[1].Busy; got != time.Second {
			t.Errorf("Busy %v after the callback ran for 1s, want 1s", got)
		}
	})
}

// TestStatsWhileBuilding reads Stats while Tees and Shards are built: a
// stage is complete when Stats can see it (run with -race).
func TestStatsWhileBuilding(t *testing.T) {
	noLeaks(t)
	g, _ := pipeline.New(t.Context())
	stop := make(chan struct{})
	reader := make(chan int)
	go func() {
		branches := 0
		defer func() { reader <- branches }()
		for {
			for _, s := range g.Stats() {
				branches += len(s.Branches)
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	in := pipeline.FromSeq(g, upTo(10))
	for range 50 {
		outs := pipeline.Tee(g, in, 2)
		in = outs[0]
		pipeline.ForEach(g, outs[1], func(context.Context, int) error { return nil })
		shards := pipeline.Shard(g, in, 2, func(v int) int { return v })
		in = pipeline.Merge(g, shards...)
	}
	close(stop)
	<-reader
	pipeline.ForEach(g, in, func(context.Context, int) error { return nil })
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// gatedSender is a chans.Sender whose C() has capacity n and whose reader
// starts only when gate is closed.
type gatedSender struct {
	c    chan int
	done chan struct{}
}

func newGatedSender(n int, gate <-chan struct{}) *gatedSender {
	s := &gatedSender{c: make(chan int, n), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		<-gate
		for range s.c {
		}
	}()
	return s
}

func (s *gatedSender) C() chan<- int { return s.c }
func (s *gatedSender) Wait() error   { <-s.done; return nil }
func (s *gatedSender) Close() error  { return s.Wait() }

// TestBuffered fills each kind of stage's output buffers behind a consumer
// that takes one value and waits: Buffered is what sits in them, summed over
// a Tee's branches; once the consumers drain them it is 0.
func TestBuffered(t *testing.T) {
	noLeaks(t)
	stuck := func(gate <-chan struct{}) func(context.Context, int) error {
		return func(context.Context, int) error { <-gate; return nil }
	}
	id := func(_ context.Context, v int) (int, error) { return v, nil }
	tests := []struct {
		name  string
		build func(g *pipeline.Group, gate chan struct{})
		want  []int                  // each stage's Buffered while the consumers wait
		tee   []pipeline.BranchStats // stage 1's branches, for the Tee
	}{
		{"seq", func(g *pipeline.Group, gate chan struct{}) {
			pipeline.ForEach(g, pipeline.FromSeq(g, upTo(10), pipeline.Buffer(5)), stuck(gate))
		}, []int{5, 0}, nil},
		{"map", func(g *pipeline.Group, gate chan struct{}) {
			pipeline.ForEach(g, pipeline.Map(g, pipeline.FromSeq(g, upTo(10)), id, pipeline.Buffer(4)), stuck(gate))
		}, []int{0, 4, 0}, nil},
		{"batch", func(g *pipeline.Group, gate chan struct{}) {
			b := pipeline.Batch(g, pipeline.FromSeq(g, upTo(20)), 2, 0, pipeline.Buffer(3))
			pipeline.ForEach(g, b, func(context.Context, []int) error { <-gate; return nil })
		}, []int{0, 3, 0}, nil},
		{"tee", func(g *pipeline.Group, gate chan struct{}) {
			// Each consumer holds value 0; 1 and 2 wait in each branch, and
			// the Tee waits to send 3 on branch 0.
			outs := pipeline.Tee(g, pipeline.FromSeq(g, upTo(10)), 2, pipeline.Buffer(2))
			pipeline.ForEach(g, outs[0], stuck(gate))
			pipeline.ForEach(g, outs[1], stuck(gate))
		}, []int{0, 4, 0, 0}, []pipeline.BranchStats{{Out: 3, Buffered: 2}, {Out: 3, Buffered: 2}}},
		{"to", func(g *pipeline.Group, gate chan struct{}) {
			pipeline.To(g, pipeline.FromSeq(g, upTo(10)), newGatedSender(3, gate))
		}, []int{0, 3}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g, _ := pipeline.New(t.Context())
				gate := make(chan struct{})
				tt.build(g, gate)
				synctest.Wait() // every buffer is as full as it gets
				st := g.Stats()
				for i, s := range st {
					if s.Buffered != tt.want[i] {
						t.Errorf("stage %s: Buffered %d, want %d", s.Name, s.Buffered, tt.want[i])
					}
				}
				if tt.tee != nil && !slices.Equal(st[1].Branches, tt.tee) {
					t.Errorf("tee branches %+v, want %+v", st[1].Branches, tt.tee)
				}
				close(gate)
				if err := g.Wait(); err != nil {
					t.Fatal(err)
				}
				for _, s := range g.Stats() {
					if s.Buffered != 0 {
						t.Errorf("stage %s: Buffered %d after the end, want 0", s.Name, s.Buffered)
					}
				}
			})
		})
	}
}

// TestErrors: StageStats.Errors counts the callbacks that returned an
// error, with one worker and with ordered workers.
func TestErrors(t *testing.T) {
	noLeaks(t)
	for _, opts := range [][]pipeline.StageOption{nil, {pipeline.Workers(3), pipeline.Ordered()}} {
		g, _ := pipeline.New(t.Context())
		out := pipeline.Map(g, pipeline.FromSeq(g, upTo(10)), func(_ context.Context, v int) (int, error) {
			if v == 4 {
				return 0, errors.New("four")
			}
			return v, nil
		}, opts...)
		pipeline.ForEach(g, out, func(context.Context, int) error { return nil })
		if err := g.Wait(); err == nil {
			t.Fatal("Wait: nil, want the stage's error")
		}
		if got := g.Stats()[1].Errors; got != 1 {
			t.Errorf("Errors %d with options %v, want 1", got, opts)
		}
	}
}
