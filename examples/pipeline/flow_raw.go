package main

// FALLBACK: this flow uses raw cilium/ebpf because the bpfchan packages
// (pump, pipeline, maps, watch) have not landed yet. It will be replaced by
// the pipeline.Group flow.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bpfchan/bpfchan/internal/codec"
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
)

type rawFlow struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	rd     *ringbuf.Reader
	wg     sync.WaitGroup
	errMu  sync.Mutex
	err    error

	readerDone        chan struct{}
	ring, sink, queue struct{ received, delivered atomic.Uint64 }
}

func startFlow(ctx context.Context, cfg config, tr *tracer, t *tally) (flow, error) {
	rd, err := ringbuf.NewReader(tr.objs.Events)
	if err != nil {
		return nil, fmt.Errorf("open ring buffer: %w", err)
	}
	f := &rawFlow{rd: rd, readerDone: make(chan struct{})}
	f.ctx, f.cancel = context.WithCancelCause(ctx)
	f.wg.Add(3)
	go f.read(cfg, tr, t)
	go f.work(tr, t)
	go f.watch(tr, t)
	return f, nil
}

func (f *rawFlow) fail(err error) {
	f.errMu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.errMu.Unlock()
	f.cancel(err)
}

func (f *rawFlow) read(cfg config, tr *tracer, t *tally) {
	defer f.wg.Done()
	defer close(f.readerDone)
	dec, err := codec.For[event]()
	if err != nil {
		f.fail(err)
		return
	}
	var rec ringbuf.Record
	var e event
	var key uint32
	for {
		err := f.rd.ReadInto(&rec)
		if errors.Is(err, ringbuf.ErrFlushed) || errors.Is(err, ringbuf.ErrClosed) {
			return
		}
		if err != nil {
			f.fail(fmt.Errorf("read ring buffer: %w", err))
			return
		}
		f.ring.received.Add(1)
		if err := dec.Decode(rec.RawSample, &e); err != nil {
			f.fail(err)
			return
		}
		f.ring.delivered.Add(1)
		t.received.Add(1)
		n := t.counted.Add(1)
		if err := tr.objs.Seen.Update(key, n, ebpf.UpdateAny); err != nil {
			f.fail(fmt.Errorf("update seen: %w", err))
			return
		}
		if !cfg.important[e.Nr] {
			continue
		}
		t.important.Add(1)
		f.sink.received.Add(1)
		for {
			err := tr.objs.Important.Update(nil, &e, ebpf.UpdateAny)
			if err == nil {
				break
			}
			if !errors.Is(err, syscall.E2BIG) { // E2BIG: the queue is full
				f.fail(fmt.Errorf("push important: %w", err))
				return
			}
			select {
			case <-time.After(time.Millisecond):
			case <-f.ctx.Done():
				return
			}
		}
		f.sink.delivered.Add(1)
	}
}

func (f *rawFlow) work(tr *tracer, t *tally) {
	defer f.wg.Done()
	var e event
	backoff := time.Millisecond
	for {
		err := tr.objs.Important.LookupAndDelete(nil, &e)
		if err == nil {
			f.queue.received.Add(1)
			f.queue.delivered.Add(1)
			t.work(e)
			backoff = time.Millisecond
			continue
		}
		if !errors.Is(err, ebpf.ErrKeyNotExist) {
			f.fail(fmt.Errorf("pop important: %w", err))
			return
		}
		select {
		case <-f.readerDone:
			if tr.objs.Important.LookupAndDelete(nil, &e) != nil {
				return
			}
			f.queue.received.Add(1)
			f.queue.delivered.Add(1)
			t.work(e)
			continue
		case <-f.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 50*time.Millisecond)
	}
}

func (f *rawFlow) watch(tr *tracer, t *tally) {
	defer f.wg.Done()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		var nr uint32
		var n uint64
		it := tr.objs.Counts.Iterate()
		for it.Next(&nr, &n) {
			t.setCount(nr, n)
		}
		select {
		case <-tick.C:
		case <-f.readerDone:
			return
		case <-f.ctx.Done():
			return
		}
	}
}

func (f *rawFlow) Stop() { f.rd.Flush() }

func (f *rawFlow) Wait() error {
	f.wg.Wait()
	f.rd.Close()
	f.errMu.Lock()
	defer f.errMu.Unlock()
	return f.err
}

func (f *rawFlow) Failed() <-chan struct{} { return f.ctx.Done() }

func (f *rawFlow) Figures() flowFigures {
	return flowFigures{
		Ring:  pumpFigures{Received: f.ring.received.Load(), Delivered: f.ring.delivered.Load()},
		Sink:  pumpFigures{Received: f.sink.received.Load(), Delivered: f.sink.delivered.Load()},
		Queue: pumpFigures{Received: f.queue.received.Load(), Delivered: f.queue.delivered.Load()},
	}
}
