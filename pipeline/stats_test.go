package pipeline_test

import (
	"context"
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
