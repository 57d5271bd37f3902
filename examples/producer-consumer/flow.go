package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	bpfmaps "github.com/bpfchan/bpfchan/maps"
	"github.com/bpfchan/bpfchan/pipeline"
	"github.com/bpfchan/bpfchan/pump"
)

// flow is the running pipeline: its pumps and the counters of its stages.
type flow struct {
	l                *lab
	ring             *pump.Source[RawEvent]
	q1w              *pump.Sink[Filtered]
	q1               *pump.Source[Filtered]
	q2w              *pump.Sink[Enriched]
	q2               *pump.Source[Enriched]
	parsed, filtered atomic.Uint64
	enriched         []atomic.Uint64 // per worker
	aggregated       atomic.Uint64
}

// start builds the lab's three stages on g:
//
//	ring buffer --pump.RingBuf--> categorize --> filter --pump.QueueWriter--> queue 1
//	queue 1 --pump.Queue--> round-robin Shard --> enrich × workers --> Merge --pump.QueueWriter--> queue 2
//	queue 2 --pump.Queue--> Batch --> aggregate: maps.Add into the stats map
//
// Each queue's source is closed only once the writer feeding it has pushed
// everything (a pump.Source's Close delivers what the map holds at that
// moment), so a graceful Stop drains the stages one after the other.
func start(g *pipeline.Group, gctx context.Context, cfg config, l *lab) (f *flow, err error) {
	f = &flow{l: l, enriched: make([]atomic.Uint64, cfg.workers)}
	// Sources not adopted by the group are closed here when setup fails.
	var loose []interface{ Close() error }
	defer func() {
		if err != nil {
			for _, c := range loose {
				c.Close()
			}
		}
	}()

	// Stage 1: filter and categorize.
	if f.ring, err = pump.RingBuf[RawEvent](gctx, l.rb, pump.WithBuffer(256)); err != nil {
		return nil, err
	}
	events := pipeline.Map(g, pipeline.From(g, f.ring), func(_ context.Context, r RawEvent) (Event, error) {
		f.parsed.Add(1)
		return parse(r), nil
	}, pipeline.Name("categorize"))
	kept := pipeline.Filter(g, events, func(_ context.Context, e Event) (bool, error) {
		if e.discard() {
			f.filtered.Add(1)
			return false, nil
		}
		return true, nil
	}, pipeline.Name("filter"))
	out1 := pipeline.Map(g, kept, func(_ context.Context, e Event) (Filtered, error) { return filtered(e), nil },
		pipeline.Name("serialize"))
	if f.q1w, err = pump.QueueWriter[Filtered](gctx, l.q1.Map(), pump.WithFull(cfg.full)); err != nil {
		return nil, err
	}
	pipeline.To(g, out1, f.q1w)

	// Stage 2: enrich, fanned out round-robin to the workers.
	if f.q1, err = pump.Queue[Filtered](gctx, l.q1.Map()); err != nil {
		return nil, err
	}
	loose = append(loose, f.q1)
	next := 0
	branches := pipeline.Shard(g, f.q1.C(), cfg.workers, func(Filtered) int { next++; return next }, pipeline.Name("round-robin"))
	outs := make([]<-chan Enriched, cfg.workers)
	for i, b := range branches {
		outs[i] = pipeline.Map(g, b, func(_ context.Context, v Filtered) (Enriched, error) {
			f.enriched[i].Add(1)
			return enrich(v, i, time.Now().UnixNano()), nil
		}, pipeline.Name(fmt.Sprintf("enrich#%d", i)))
	}
	if f.q2w, err = pump.QueueWriter[Enriched](gctx, l.q2.Map(), pump.WithFull(cfg.full)); err != nil {
		return nil, err
	}
	pipeline.To(g, pipeline.Merge(g, outs...), f.q2w)

	// Stage 3: aggregate into the stats map.
	if f.q2, err = pump.Queue[Enriched](gctx, l.q2.Map()); err != nil {
		return nil, err
	}
	loose = append(loose, f.q2)
	batches := pipeline.Batch(g, f.q2.C(), 256, 10*time.Millisecond)
	pipeline.ForEach(g, batches, f.aggregate, pipeline.Name("aggregate"))

	// Once queue 1's writer has pushed everything, queue 1's source may
	// stop; likewise for queue 2. (On an abort both stop with gctx.)
	g.Go("close queue 1", func(context.Context) error {
		_ = f.q1w.Wait() // its error is To's to report
		return f.q1.Close()
	})
	g.Go("close queue 2", func(context.Context) error {
		_ = f.q2w.Wait()
		return f.q2.Close()
	})
	return f, nil
}

// aggregate adds a batch of enriched events to the stats map: one
// kernel-atomic maps.Add per category present and one for the total,
// instead of the lab's swap! per event.
func (f *flow) aggregate(_ context.Context, batch []Enriched) error {
	var n [len(categories)]uint64
	for _, e := range batch {
		if e.Type < 1 || int(e.Type) >= len(categories) {
			return fmt.Errorf("event %d: type %d out of range", e.Seq, e.Type)
		}
		n[e.Type]++
	}
	for t := 1; t < len(categories); t++ {
		if n[t] == 0 {
			continue
		}
		if _, err := bpfmaps.Add(f.l.entries[categories[t]], n[t]); err != nil {
			return err
		}
	}
	if _, err := bpfmaps.Add(f.l.entries["total"], uint64(len(batch))); err != nil {
		return err
	}
	f.aggregated.Add(uint64(len(batch)))
	return nil
}

// produce runs the BPF producer: every 10 ms, enough runs for cfg.rate
// events a second, until cfg.events are produced (0: no limit) or stop is
// closed. One run writes one record into the ring buffer, or counts it as
// lost when the ring is full.
func produce(ctx context.Context, cfg config, l *lab, stop <-chan struct{}) error {
	per := max(cfg.rate/100, 1)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	var done uint64
	for cfg.events == 0 || done < cfg.events {
		n := uint64(per)
		if cfg.events > 0 {
			n = min(n, cfg.events-done)
		}
		if err := l.prod.Run(int(n)); err != nil {
			return fmt.Errorf("run the BPF producer: %w", err)
		}
		done += n
		if cfg.events > 0 && done == cfg.events {
			return nil
		}
		select {
		case <-t.C:
		case <-stop:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// runFlow runs the lab until cfg.events are produced, the duration ends or
// ctx is cancelled, printing a line every cfg.interval; it then stops
// gracefully and returns the final figures.
func runFlow(ctx context.Context, cfg config, l *lab, out io.Writer) (figures, error) {
	// Ctrl-C (ctx) stops the group gracefully, not by cancelling it.
	g, gctx := pipeline.New(context.WithoutCancel(ctx))
	f, err := start(g, gctx, cfg, l)
	if err != nil {
		g.Stop()
		return figures{}, errors.Join(err, g.Wait())
	}
	stop := make(chan struct{})
	produced := make(chan struct{})
	g.Go("producer", func(gctx context.Context) error {
		defer close(produced)
		return produce(gctx, cfg, l, stop)
	})

	began := time.Now()
	var deadline <-chan time.Time
	if cfg.duration > 0 {
		t := time.NewTimer(cfg.duration)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(cfg.interval)
	defer tick.Stop()
wait:
	for {
		select {
		case <-tick.C:
			if err := f.line(out, time.Since(began)); err != nil {
				g.Stop()
				return figures{}, errors.Join(err, g.Wait())
			}
		case <-produced:
			break wait
		case <-deadline:
			break wait
		case <-ctx.Done():
			break wait
		case <-gctx.Done():
			break wait // a stage failed: Wait says which
		}
	}
	close(stop)
	<-produced
	g.Stop()
	if err := g.Wait(); err != nil {
		return figures{}, err
	}
	return f.figures(time.Since(began))
}

// line prints the progress so far.
func (f *flow) line(out io.Writer, at time.Duration) error {
	attempted, lost, err := f.l.prod.Counts()
	if err != nil {
		return err
	}
	s1, s2 := f.q1w.Stats(), f.q2w.Stats()
	_, err = fmt.Fprintf(out, "[%5.1fs] produced %d (ring full %d) | filtered %d | queue 1 pushed %d dropped %d | enriched %v | queue 2 pushed %d dropped %d | aggregated %d\n",
		at.Seconds(), attempted, lost, f.filtered.Load(), s1.Delivered, s1.Dropped, f.workerCounts(), s2.Delivered, s2.Dropped, f.aggregated.Load())
	return err
}

func (f *flow) workerCounts() []uint64 {
	c := make([]uint64, len(f.enriched))
	for i := range f.enriched {
		c[i] = f.enriched[i].Load()
	}
	return c
}
