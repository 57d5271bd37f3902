package pipeline_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/bpfchan/bpfchan/chans"
	"github.com/bpfchan/bpfchan/pipeline"
)

// gatedSource yields 0 … n-1 and then opens gate: consumers that wait for
// the gate are stuck while the whole input goes through the stage.
func gatedSource(n int, gate chan struct{}) func(yield func(int) bool) {
	return func(yield func(int) bool) {
		defer close(gate)
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
}

// TestStageDrops runs each stage with a drop policy into consumers stuck
// until the input is through: every value is passed on or counted dropped,
// drops happen, and DropOldest keeps the newest.
func TestStageDrops(t *testing.T) {
	noLeaks(t)
	const n, buf = 100, 3
	id := func(_ context.Context, v int) (int, error) { return v, nil }
	tests := []struct {
		name   string
		policy chans.Policy
		// build returns the outputs the stuck consumers read; the stage under
		// test is stage 1.
		build func(g *pipeline.Group, src <-chan int) []<-chan int
		// want is how many values each output would pass with no drops.
		want []uint64
	}{
		{"map newest", chans.DropNewest, func(g *pipeline.Group, src <-chan int) []<-chan int {
			return []<-chan int{pipeline.Map(g, src, id, pipeline.Buffer(buf), pipeline.Overflow(chans.DropNewest))}
		}, []uint64{n}},
		{"map oldest", chans.DropOldest, func(g *pipeline.Group, src <-chan int) []<-chan int {
			return []<-chan int{pipeline.Map(g, src, id, pipeline.Buffer(buf), pipeline.Overflow(chans.DropOldest))}
		}, []uint64{n}},
		{"ordered map oldest", chans.DropOldest, func(g *pipeline.Group, src <-chan int) []<-chan int {
			return []<-chan int{pipeline.Map(g, src, id, pipeline.Workers(2), pipeline.Ordered(), pipeline.Buffer(buf), pipeline.Overflow(chans.DropOldest))}
		}, []uint64{n}},
		{"filter newest", chans.DropNewest, func(g *pipeline.Group, src <-chan int) []<-chan int {
			even := func(_ context.Context, v int) (bool, error) { return v%2 == 0, nil }
			return []<-chan int{pipeline.Filter(g, src, even, pipeline.Buffer(buf), pipeline.Overflow(chans.DropNewest))}
		}, []uint64{n / 2}},
		{"shard newest", chans.DropNewest, func(g *pipeline.Group, src <-chan int) []<-chan int {
			outs := pipeline.Shard(g, src, 2, func(v int) int { return v }, pipeline.Buffer(buf), pipeline.Overflow(chans.DropNewest))
			return outs
		}, []uint64{n / 2, n / 2}},
		{"tee branch oldest", chans.DropOldest, func(g *pipeline.Group, src <-chan int) []<-chan int {
			outs := pipeline.Tee(g, src, 2, pipeline.Branch(1, pipeline.Buffer(buf), pipeline.Overflow(chans.DropOldest)))
			pipeline.ForEach(g, outs[0], func(context.Context, int) error { return nil }) // fast, never drops
			return outs[1:]
		}, []uint64{n}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, _ := pipeline.New(t.Context())
			gate := make(chan struct{})
			outs := tt.build(g, pipeline.FromSeq(g, gatedSource(n, gate)))
			got := make([][]int, len(outs))
			for i, o := range outs {
				pipeline.ForEach(g, o, func(_ context.Context, v int) error {
					<-gate
					got[i] = append(got[i], v)
					return nil
				})
			}
			if err := g.Wait(); err != nil {
				t.Fatal(err)
			}
			st := g.Stats()[1]
			if st.In != n {
				t.Errorf("stage in %d, want %d", st.In, n)
			}
			counts := []pipeline.BranchStats{{Out: st.Out, Dropped: st.Dropped}}
			if st.Branches != nil {
				counts = st.Branches[len(st.Branches)-len(outs):]
			}
			for i, c := range counts {
				if c.Out+c.Dropped != tt.want[i] || c.Out != uint64(len(got[i])) || c.Dropped == 0 {
					t.Errorf("output %d: out %d + dropped %d, consumer got %d; want %d in all, as many got as out, and drops",
						i, c.Out, c.Dropped, len(got[i]), tt.want[i])
				}
				if !slices.IsSorted(got[i]) {
					t.Errorf("output %d out of order: %v", i, got[i])
				}
				if tt.policy == chans.DropOldest && !slices.Equal(got[i][len(got[i])-buf:], []int{n - 3, n - 2, n - 1}) {
					t.Errorf("output %d got %v, want the newest %d last", i, got[i], buf)
				}
			}
		})
	}
}

// TestBatchDrops: a Batch with a drop policy counts batches in Out and
// Dropped, and values in In.
func TestBatchDrops(t *testing.T) {
	noLeaks(t)
	const n, size = 100, 2
	g, _ := pipeline.New(t.Context())
	gate := make(chan struct{})
	out := pipeline.Batch(g, pipeline.FromSeq(g, gatedSource(n, gate)), size, 0, pipeline.Buffer(1), pipeline.Overflow(chans.DropNewest))
	var mu sync.Mutex
	var got int
	pipeline.ForEach(g, out, func(_ context.Context, b []int) error {
		<-gate
		mu.Lock()
		got += len(b)
		mu.Unlock()
		return nil
	})
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	st := g.Stats()[1]
	if st.In != n || st.Out+st.Dropped != n/size || st.Out*size != uint64(got) || st.Dropped == 0 {
		t.Errorf("batch stats %+v, consumer got %d values; want %d in, %d batches out or dropped, with drops", st, got, n, n/size)
	}
}
