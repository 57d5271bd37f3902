package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sync/errgroup"

	"github.com/bpfchan/bpfchan/chans"
	"github.com/bpfchan/bpfchan/internal/producer"
	bpfmaps "github.com/bpfchan/bpfchan/maps"
	"github.com/bpfchan/bpfchan/pipeline"
	"github.com/bpfchan/bpfchan/pump"
	"github.com/bpfchan/bpfchan/watch"
)

// exampleRing returns a ring buffer and a BPF program (run with
// Program.Run, nothing attached) that writes 16-byte records numbered 0, 1,
// 2... into it: the kernel side of the examples.
func exampleRing() (*ebpf.Map, *producer.Producer, error) {
	rb, err := bpfmaps.NewRingBuf(1 << 16)
	if err != nil {
		return nil, nil, err
	}
	prod, err := producer.NewRing(rb, 16)
	if err != nil {
		rb.Close()
		return nil, nil, err
	}
	return rb, prod, nil
}

// The canonical shape: a source, stages, a sink, and Wait.
func ExampleNew() {
	g, _ := pipeline.New(context.Background())
	words := pipeline.FromSeq(g, slices.Values([]string{"ring", "perf", "queue", "stack"}))
	upper := pipeline.Map(g, words, func(_ context.Context, w string) (string, error) {
		return strings.ToUpper(w), nil
	})
	pipeline.ForEach(g, upper, func(_ context.Context, w string) error {
		fmt.Println(w)
		return nil
	})
	if err := g.Wait(); err != nil {
		fmt.Println("error:", err)
	}
	// Output:
	// RING
	// PERF
	// QUEUE
	// STACK
}

// A ring-buffer pump adopted by the group: Stop closes it, so what the
// kernel already holds is still processed before Wait returns.
func ExampleFrom() {
	rb, prod, err := exampleRing() // a ring buffer and a BPF program writing records 0, 1, 2... into it
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rb.Close()
	defer prod.Close()

	g, ctx := pipeline.New(context.Background())
	src, err := pump.RingBuf[record](ctx, rb)
	if err != nil {
		fmt.Println(err)
		return
	}
	pipeline.ForEach(g, pipeline.From(g, src), func(_ context.Context, r record) error {
		fmt.Println("record", r.Seq)
		return nil
	})
	if err := prod.Run(3); err != nil {
		fmt.Println(err)
	}
	g.Stop()
	fmt.Println("wait:", g.Wait())
	// Output:
	// record 0
	// record 1
	// record 2
	// wait: <nil>
}

// Pumps and watchers need no Group: each one's Wait is an errgroup function,
// and the errgroup's context, given to every constructor, aborts them all at
// the first error. Here the consumer rejects record 2: the errgroup cancels
// its context with that error, the pump and the watcher stop, and every Wait
// reports it.
func Example_errgroup() {
	rb, prod, err := exampleRing() // a ring buffer and a BPF program writing records 0, 1, 2... into it
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rb.Close()
	defer prod.Close()
	limits, err := bpfmaps.NewHash[uint32, uint64](1)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer limits.Close()

	eg, ctx := errgroup.WithContext(context.Background())
	src, err := pump.RingBuf[record](ctx, rb)
	if err != nil {
		fmt.Println(err)
		return
	}
	eg.Go(src.Wait)
	w, err := watch.Changes[uint32, uint64](ctx, limits.Map(), 0) // an operator's knob
	if err != nil {
		fmt.Println(err)
		return
	}
	eg.Go(w.Wait)

	var limit atomic.Uint64
	eg.Go(func() error {
		for c := range w.C() { // ends when the watcher stops
			limit.Store(c.New)
		}
		return nil
	})
	eg.Go(func() error {
		for r := range src.C() { // ends when the pump stops
			if r.Seq == 2 {
				return fmt.Errorf("record %d: malformed", r.Seq)
			}
			fmt.Println("record", r.Seq)
		}
		return nil
	})
	if err := prod.Run(5); err != nil {
		fmt.Println(err)
	}
	fmt.Println("errgroup:", eg.Wait())
	fmt.Println("pump:", src.Wait())
	fmt.Println("watcher:", w.Wait())
	fmt.Println("delivered:", src.Stats().Delivered) // records 0, 1 and the rejected 2
	// Output:
	// record 0
	// record 1
	// errgroup: record 2: malformed
	// pump: record 2: malformed
	// watcher: record 2: malformed
	// delivered: 3
}

// A graceful stop on Ctrl-C is one line: context.AfterFunc(sigCtx, g.Stop).
// A program gets sigCtx from
//
//	sigCtx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
//	defer cancel()
//
// and here a context the example cancels itself stands in for it. The
// records the kernel holds when the signal comes are still processed; passing
// sigCtx to New instead would abort and lose them.
func ExampleGroup_Stop_interrupt() {
	rb, prod, err := exampleRing() // a ring buffer and a BPF program writing records 0, 1, 2... into it
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rb.Close()
	defer prod.Close()

	sigCtx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	g, ctx := pipeline.New(context.Background())
	defer context.AfterFunc(sigCtx, g.Stop)()

	src, err := pump.RingBuf[record](ctx, rb)
	if err != nil {
		fmt.Println(err)
		return
	}
	pipeline.ForEach(g, pipeline.From(g, src), func(_ context.Context, r record) error {
		fmt.Println("record", r.Seq)
		return nil
	})
	if err := prod.Run(3); err != nil { // three records wait in the kernel
		fmt.Println(err)
	}
	interrupt() // Ctrl-C
	fmt.Println("wait:", g.Wait())
	// Output:
	// record 0
	// record 1
	// record 2
	// wait: <nil>
}

// To feeds a pump's sink: here a BPF queue map, read back afterwards.
func ExampleTo() {
	q, err := bpfmaps.NewQueue[uint64](16)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer q.Close()
	g, ctx := pipeline.New(context.Background())
	sink, err := pump.QueueWriter[uint64](ctx, q.Map())
	if err != nil {
		fmt.Println(err)
		return
	}
	pipeline.To(g, pipeline.FromSeq(g, slices.Values([]uint64{7, 8, 9})), sink)
	fmt.Println("wait:", g.Wait())
	for range 3 {
		v, err := q.Pop()
		fmt.Println(v, err)
	}
	// Output:
	// wait: <nil>
	// 7 <nil>
	// 8 <nil>
	// 9 <nil>
}

func ExampleMap() {
	g, _ := pipeline.New(context.Background())
	squares := pipeline.Map(g, pipeline.FromSeq(g, upTo(6)), func(_ context.Context, v int) (int, error) {
		return v * v, nil
	}, pipeline.Workers(3), pipeline.Ordered()) // in parallel, in input order
	for v, err := range pipeline.All(g, squares) {
		if err != nil {
			fmt.Println("error:", err)
			break
		}
		fmt.Print(v, " ")
	}
	fmt.Println()
	// Output: 0 1 4 9 16 25
}

func ExampleFilter() {
	g, _ := pipeline.New(context.Background())
	odd := pipeline.Filter(g, pipeline.FromSeq(g, upTo(10)), func(_ context.Context, v int) (bool, error) {
		return v%2 == 1, nil
	})
	for v := range pipeline.All(g, odd) {
		fmt.Print(v, " ")
	}
	fmt.Println()
	// Output: 1 3 5 7 9
}

// A stage error aborts every stage and names the stage.
func ExampleForEach() {
	g, _ := pipeline.New(context.Background())
	pipeline.ForEach(g, pipeline.FromSeq(g, naturals()), func(_ context.Context, v int) error {
		if v == 3 {
			return errors.New("cannot store 3")
		}
		return nil
	}, pipeline.Name("store"))
	err := g.Wait()
	var se *pipeline.StageError
	fmt.Println(err, errors.As(err, &se) && se.Stage == "store")
	// Output: pipeline: stage store: cannot store 3 true
}

func ExampleBatch() {
	g, _ := pipeline.New(context.Background())
	// Flush at 4 values, when the oldest has waited a second, or at the end.
	batches := pipeline.Batch(g, pipeline.FromSeq(g, upTo(10)), 4, time.Second)
	for b := range pipeline.All(g, batches) {
		fmt.Println(b)
	}
	// Output:
	// [0 1 2 3]
	// [4 5 6 7]
	// [8 9]
}

// A Tee whose second branch has a small buffer and drops when it is full,
// so it never holds the first branch back.
func ExampleTee() {
	g, _ := pipeline.New(context.Background())
	outs := pipeline.Tee(g, pipeline.FromSeq(g, upTo(1000)), 2,
		pipeline.Branch(1, pipeline.Buffer(16), pipeline.Overflow(chans.DropNewest)))
	var all, sampled int
	pipeline.ForEach(g, outs[0], func(context.Context, int) error { all++; return nil })
	pipeline.ForEach(g, outs[1], func(context.Context, int) error { sampled++; return nil })
	if err := g.Wait(); err != nil {
		fmt.Println(err)
	}
	br := g.Stats()[1].Branches
	fmt.Println(all, uint64(sampled)+br[1].Dropped)
	// Output: 1000 1000
}

// Shard keeps every key on one output, in order: here a per-key running sum
// needs no lock.
func ExampleShard() {
	type ev struct{ key, n int }
	g, _ := pipeline.New(context.Background())
	evs := pipeline.Map(g, pipeline.FromSeq(g, upTo(12)), func(_ context.Context, i int) (ev, error) {
		return ev{key: i % 3, n: i}, nil
	})
	shards := pipeline.Shard(g, evs, 2, func(e ev) int { return e.key })
	sums := make([]map[int]int, len(shards))
	for i, s := range shards {
		sums[i] = map[int]int{}
		pipeline.ForEach(g, s, func(_ context.Context, e ev) error { sums[i][e.key] += e.n; return nil })
	}
	if err := g.Wait(); err != nil {
		fmt.Println(err)
	}
	fmt.Println(sums)
	// Output: [map[0:18 2:26] map[1:22]]
}

func ExampleMerge() {
	g, _ := pipeline.New(context.Background())
	a := pipeline.FromSeq(g, slices.Values([]string{"a1", "a2"}))
	b := pipeline.FromSeq(g, slices.Values([]string{"b1", "b2"}))
	var got []string
	for v := range pipeline.All(g, pipeline.Merge(g, a, b)) {
		got = append(got, v)
	}
	slices.Sort(got) // each input keeps its order; the interleaving varies
	fmt.Println(got)
	// Output: [a1 a2 b1 b2]
}

// Breaking out of All aborts the group and waits for it: nothing keeps
// reading the endless source.
func ExampleAll() {
	g, _ := pipeline.New(context.Background())
	for v, err := range pipeline.All(g, pipeline.FromSeq(g, naturals())) {
		if err != nil {
			fmt.Println("error:", err)
			break
		}
		if v == 3 {
			break
		}
		fmt.Println(v)
	}
	fmt.Println("wait:", g.Wait())
	// Output:
	// 0
	// 1
	// 2
	// wait: <nil>
}

func ExampleFromSeq() {
	g, _ := pipeline.New(context.Background())
	out := pipeline.FromSeq(g, slices.Values([]string{"x", "y"}), pipeline.Buffer(2))
	for v := range pipeline.All(g, out) {
		fmt.Println(v)
	}
	// Output:
	// x
	// y
}

// Stop is graceful: the endless source stops, what is in flight drains, and
// Wait returns nil.
func ExampleGroup_Stop() {
	g, _ := pipeline.New(context.Background())
	seen := 0
	pipeline.ForEach(g, pipeline.FromSeq(g, naturals()), func(context.Context, int) error {
		if seen++; seen == 100 {
			g.Stop()
		}
		return nil
	})
	err := g.Wait()
	fmt.Println(err, uint64(seen) == g.Stats()[0].Out)
	// Output: <nil> true
}

// Go runs a function the group owns; its error aborts the group.
func ExampleGroup_Go() {
	g, _ := pipeline.New(context.Background())
	g.Go("health", func(ctx context.Context) error { return errors.New("map gone") })
	fmt.Println(g.Wait())
	// Output: pipeline: stage health: map gone
}

func ExampleGroup_Stats() {
	g, _ := pipeline.New(context.Background())
	even := pipeline.Filter(g, pipeline.FromSeq(g, upTo(10)), func(_ context.Context, v int) (bool, error) {
		return v%2 == 0, nil
	}, pipeline.Name("even"))
	pipeline.ForEach(g, even, func(context.Context, int) error { return nil })
	g.Wait()
	for _, s := range g.Stats() {
		fmt.Println(s.Name, s.In, s.Out, s.Dropped)
	}
	// Output:
	// seq#1 10 10 0
	// even 10 5 0
	// foreach#3 5 0 0
}
