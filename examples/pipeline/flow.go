package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	bpfmaps "github.com/bpfchan/bpfchan/maps"
	"github.com/bpfchan/bpfchan/metrics"
	"github.com/bpfchan/bpfchan/pipeline"
	"github.com/bpfchan/bpfchan/pump"
	"github.com/bpfchan/bpfchan/watch"
)

// groupFlow is the event pipeline, one pipeline.Group:
//
//	ring buffer "events" --RingBufBatches--> Map(count: atomic add on seen[0])
//	  --> Map(pick the important events) --> Filter(non-empty) --> unbatch
//	  --To--> QueueWriter --> BPF queue "important"
//	BPF queue "important" --Queue--> ForEach(worker)
//	hash map "counts" --watch.Map--> ForEach(top syscalls panel)
type groupFlow struct {
	g      *pipeline.Group
	gctx   context.Context
	cancel context.CancelCauseFunc
	ring   *pump.Source[[]event]
	sink   *pump.Sink[event]
	queue  *pump.Source[event]
	top    *watch.Watcher[watch.Event[uint32, uint64]]
}

// watchInterval is how often the top-syscalls watcher reads the counts map
// (one batch lookup per read).
const watchInterval = 250 * time.Millisecond

func startFlow(ctx context.Context, cfg config, tr *tracer, t *tally) (_ flow, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	g, gctx := pipeline.New(ctx)
	f := &groupFlow{g: g, gctx: gctx, cancel: cancel}
	var closers []func() error
	defer func() {
		if err != nil {
			cancel(err)
			for _, c := range closers {
				_ = c() // the error that matters is err
			}
		}
	}()

	// The kernel counter of events received: an Entry whose Add is one
	// kernel-atomic fetch-add (a helper program run), once per batch.
	counter := tr.seen.Entry(0)

	// Every pump is created first, with the group's context, then adopted.
	if f.ring, err = pump.RingBufBatches[event](gctx, tr.objs.Events, pump.WithBuffer(4)); err != nil {
		return nil, err
	}
	closers = append(closers, f.ring.Close)
	if f.sink, err = pump.QueueWriter[event](gctx, tr.objs.Important); err != nil {
		return nil, err
	}
	closers = append(closers, f.sink.Close)
	if f.queue, err = pump.Queue[event](gctx, tr.objs.Important); err != nil {
		return nil, err
	}
	closers = append(closers, f.queue.Close)
	if f.top, err = watch.Map[uint32, uint64](gctx, tr.objs.Counts, watch.WithInterval(watchInterval), watch.WithInitial()); err != nil {
		return nil, err
	}

	// ring buffer -> count every event: one kernel-atomic add per batch.
	batches := pipeline.From(g, f.ring)
	counted := pipeline.Map(g, batches, func(ctx context.Context, b []event) ([]event, error) {
		n, err := bpfmaps.Add(counter, uint64(len(b)))
		if err != nil {
			return nil, fmt.Errorf("count events: %w", err)
		}
		t.received.Add(uint64(len(b)))
		t.counted.Store(n)
		t.adds.Add(1)
		return b, nil
	}, pipeline.Name("count"))

	// -> pick the important events of each batch (a plain loop: no channel
	// operation per event), recycle the batch -> pass on the non-empty
	// picks -> one event at a time -> push them into the BPF queue.
	picked := pipeline.Map(g, counted, func(ctx context.Context, b []event) ([]event, error) {
		var keep []event
		for _, e := range b {
			if cfg.isImportant(e.Nr) {
				keep = append(keep, e)
			}
		}
		f.ring.Recycle(b)
		t.important.Add(uint64(len(keep)))
		return keep, nil
	}, pipeline.Name("pick"))
	some := pipeline.Filter(g, picked, func(ctx context.Context, b []event) (bool, error) {
		return len(b) > 0, nil
	}, pipeline.Name("non-empty"))
	important := unbatch(g, some)
	pipeline.To(g, important, f.sink)

	// BPF queue -> the worker. The queue pump's graceful Close waits for the
	// writer to finish first, so what it pushed last is still worked.
	work := pipeline.From(g, afterSink[event]{f.queue, f.sink})
	pipeline.ForEach(g, work, func(ctx context.Context, e event) error {
		t.work(e)
		return nil
	}, pipeline.Name("worker"))

	// counts map -> the top syscalls panel.
	pipeline.ForEach(g, pipeline.From(g, f.top), func(ctx context.Context, ev watch.Event[uint32, uint64]) error {
		t.setCount(ev.Key, ev.New)
		return nil
	}, pipeline.Name("top"))
	return f, nil
}

// unbatch passes on every event of every batch from in. It ends when in is
// closed (after a Stop, once everything upstream has drained) or when the
// group aborts.
func unbatch(g *pipeline.Group, in <-chan []event) <-chan event {
	out := make(chan event, 64)
	g.Go("unbatch", func(ctx context.Context) error {
		defer close(out)
		for {
			var b []event
			var ok bool
			select {
			case b, ok = <-in:
				if !ok {
					return nil
				}
			case <-ctx.Done():
				return nil
			}
			for _, e := range b {
				select {
				case out <- e:
				case <-ctx.Done():
					return nil
				}
			}
		}
	})
	return out
}

// afterSink is a queue pump whose graceful Close first waits until sink,
// which feeds the same queue, has pushed everything it received.
type afterSink[T any] struct {
	*pump.Source[T]
	sink *pump.Sink[T]
}

func (a afterSink[T]) Close() error {
	_ = a.sink.Wait() // its error is reported by pipeline.To
	return a.Source.Close()
}

func (f *groupFlow) Stop() { f.g.Stop() }

func (f *groupFlow) Wait() error {
	err := f.g.Wait()
	f.cancel(errors.New("pipeline: stopped"))
	return err
}

func (f *groupFlow) Failed() <-chan struct{} { return f.gctx.Done() }

func (f *groupFlow) Figures() flowFigures {
	return flowFigures{Ring: figures(f.ring.Stats()), Sink: figures(f.sink.Stats()), Queue: figures(f.queue.Stats())}
}

// Export adds the flow's handles to c, each under the name of its map, and
// the Group as "pipeline".
func (f *groupFlow) Export(c *metrics.Collector) {
	c.Add("events", f.ring)
	c.Add("important_writer", f.sink)
	c.Add("important", f.queue)
	c.Add("counts", f.top)
	c.Add("pipeline", f.g)
}

func figures(s pump.Stats) pumpFigures {
	return pumpFigures{Received: s.Received, Delivered: s.Delivered, Dropped: s.Dropped, DecodeErrors: s.DecodeErrors}
}
