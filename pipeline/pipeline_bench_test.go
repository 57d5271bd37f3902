package pipeline_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bpfchan/bpfchan/pipeline"
)

// handChain is the hand-written equivalent of FromSeq → Map → Filter →
// ForEach: four goroutines, three unbuffered channels, each send selecting on
// ctx as in the Go blog's "Pipelines and cancellation".
func handChain(ctx context.Context, n int, mapf func(int) int, keep func(int) bool, each func(int)) {
	src := make(chan int)
	mapped := make(chan int)
	kept := make(chan int)
	done := make(chan struct{})
	go func() {
		defer close(src)
		for i := range n {
			select {
			case src <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		defer close(mapped)
		for v := range src {
			select {
			case mapped <- mapf(v):
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		defer close(kept)
		for v := range mapped {
			if keep(v) {
				select {
				case kept <- v:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	go func() {
		defer close(done)
		for v := range kept {
			each(v)
		}
	}()
	<-done
}

func stagedChain(ctx context.Context, n int, mapf func(int) int, keep func(int) bool, each func(int)) error {
	g, _ := pipeline.New(ctx)
	m := pipeline.Map(g, pipeline.FromSeq(g, upTo(n)), func(_ context.Context, v int) (int, error) { return mapf(v), nil })
	f := pipeline.Filter(g, m, func(_ context.Context, v int) (bool, error) { return keep(v), nil })
	pipeline.ForEach(g, f, func(_ context.Context, v int) error { each(v); return nil })
	return g.Wait()
}

// BenchmarkThreeStages measures the per-value cost of Map → Filter →
// ForEach with trivial functions, against the hand-written chain, in the same
// run. The two alternate in slices of 10,000 values so that noise from other
// processes hits both; x-hand is the median over the slices of pipeline ÷
// hand-written, which a burst of noise in a few slices does not move, and
// x-hand-total the ratio of the totals.
func BenchmarkThreeStages(b *testing.B) {
	ctx := b.Context()
	mapf := func(v int) int { return v + 1 }
	keep := func(v int) bool { return v&3 != 0 }
	var sink int
	each := func(v int) { sink += v }
	var hand, staged time.Duration
	var ratios []float64
	const slice = 10_000
	b.ResetTimer()
	for left := b.N; left > 0; left -= slice {
		n := min(left, slice)
		start := time.Now()
		handChain(ctx, n, mapf, keep, each)
		h := time.Since(start)
		start = time.Now()
		if err := stagedChain(ctx, n, mapf, keep, each); err != nil {
			b.Fatal(err)
		}
		s := time.Since(start)
		hand += h
		staged += s
		ratios = append(ratios, float64(s)/float64(h))
	}
	b.StopTimer()
	slices.Sort(ratios)
	b.ReportMetric(float64(hand.Nanoseconds())/float64(b.N), "hand-ns/value")
	b.ReportMetric(float64(staged.Nanoseconds())/float64(b.N), "ns/value")
	b.ReportMetric(ratios[len(ratios)/2], "x-hand")
	b.ReportMetric(float64(staged)/float64(hand), "x-hand-total")
}

// spin is a CPU-bound function: 25 to 45 µs here.
func spin(v int) int {
	x := uint64(v) | 1
	for range 70_000 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return int(x & 1)
}

// handWorkers is the hand-written equivalent of FromSeq → Map(spin,
// Workers(n)) → ForEach: a source, n workers on one channel, a sink.
func handWorkers(ctx context.Context, n, workers int) {
	src := make(chan int)
	out := make(chan int)
	go func() {
		defer close(src)
		for i := range n {
			select {
			case src <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := range src {
				select {
				case out <- spin(v):
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(out) }()
	for range out {
	}
}

// BenchmarkMapWorkers runs a CPU-bound Map with 1 and 2 workers (this
// machine has 2 cores) over the same values, unordered and Ordered, and the
// hand-written equivalent in the same run. It reports each rate, the
// speedup of 2 workers over 1 for both, and x-hand-2w, the pipeline's time
// with 2 workers ÷ the hand-written one's.
func BenchmarkMapWorkers(b *testing.B) {
	ctx := b.Context()
	run := func(n int, opts ...pipeline.StageOption) time.Duration {
		start := time.Now()
		g, _ := pipeline.New(ctx)
		m := pipeline.Map(g, pipeline.FromSeq(g, upTo(n)), func(_ context.Context, v int) (int, error) { return spin(v), nil }, opts...)
		pipeline.ForEach(g, m, func(context.Context, int) error { return nil })
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	hand := func(n, workers int) time.Duration {
		start := time.Now()
		handWorkers(ctx, n, workers)
		return time.Since(start)
	}
	for _, ordered := range []bool{false, true} {
		b.Run(fmt.Sprintf("ordered=%v", ordered), func(b *testing.B) {
			var one, two, hand1, hand2 time.Duration
			const slice = 100
			for left := b.N; left > 0; left -= slice {
				n := min(left, slice)
				one += run(n, pipeline.Workers(1))
				opts := []pipeline.StageOption{pipeline.Workers(2)}
				if ordered {
					opts = append(opts, pipeline.Ordered())
				}
				two += run(n, opts...)
				hand1 += hand(n, 1)
				hand2 += hand(n, 2)
			}
			b.ReportMetric(float64(b.N)/one.Seconds(), "values/s-1w")
			b.ReportMetric(float64(b.N)/two.Seconds(), "values/s-2w")
			b.ReportMetric(one.Seconds()/two.Seconds(), "speedup")
			b.ReportMetric(hand1.Seconds()/hand2.Seconds(), "hand-speedup")
			b.ReportMetric(two.Seconds()/hand2.Seconds(), "x-hand-2w")
		})
	}
}
