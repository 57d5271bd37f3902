package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// flow is the running event pipeline.
type flow interface {
	// Stop stops it gracefully: the events already in the ring buffer and in
	// the BPF queue are still processed.
	Stop()
	// Wait returns once every goroutine of the flow has exited, with the
	// error that stopped it, if any.
	Wait() error
	// Failed is closed when the flow stops on its own, after an error.
	Failed() <-chan struct{}
	// Figures reports what its pumps have counted so far.
	Figures() flowFigures
}

// runPipeline runs the flow over tr's maps until ctx is done or
// cfg.duration has passed, drawing the live view, then stops everything
// gracefully and returns the final summary.
func runPipeline(ctx context.Context, cfg config, tr *tracer, stdout, stderr io.Writer) (*summary, error) {
	// Ctrl-C (ctx) asks for a graceful stop; only a failure aborts the flow.
	flowCtx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(errors.New("pipeline: finished"))

	t := newTally()
	f, err := startFlow(flowCtx, cfg, tr, t)
	if err != nil {
		return nil, err
	}

	out := stdout
	if cfg.json {
		out = stderr
	}
	v := newView(out, cfg, tr, t, f.Figures)
	tick := time.NewTicker(v.interval)
	defer tick.Stop()
	var deadline <-chan time.Time
	if cfg.duration > 0 {
		timer := time.NewTimer(cfg.duration)
		defer timer.Stop()
		deadline = timer.C
	}
loop:
	for {
		select {
		case now := <-tick.C:
			v.render(now)
		case <-ctx.Done():
			break loop
		case <-deadline:
			break loop
		case <-f.Failed():
			break loop
		}
	}

	// Detach first, so that the kernel figures are final and the ring
	// buffer holds everything the flow still has to process.
	detachErr := tr.Detach()
	f.Stop()
	err = errors.Join(detachErr, f.Wait())
	elapsed := time.Since(v.start)
	if v.tty {
		v.render(time.Now()) // the last frame stays on screen above the summary
	}
	if err != nil {
		return nil, err
	}
	k, err := tr.final()
	if err != nil {
		return nil, err
	}
	t.counted.Store(k.Counted)
	top, _ := topSyscalls(k.counts, 10)
	return newSummary(elapsed, cfg, k.kernelFigures, f.Figures(), t, top), nil
}

// finalFigures is what the maps hold after the flow has stopped.
type finalFigures struct {
	kernelFigures
	counts map[uint32]uint64
}

// final reads the kernel's figures; call it once the program is detached
// and the flow has stopped.
func (t *tracer) final() (finalFigures, error) {
	var f finalFigures
	var err error
	if f.RingFull, f.Uncounted, err = t.drops(); err != nil {
		return f, err
	}
	f.counts = make(map[uint32]uint64)
	var nr uint32
	var n uint64
	it := t.objs.Counts.Iterate()
	for it.Next(&nr, &n) {
		f.counts[nr] = n
		f.Syscalls += n
	}
	if err := it.Err(); err != nil {
		return f, fmt.Errorf("read counts: %w", err)
	}
	f.Syscalls += f.Uncounted
	f.Written = f.Syscalls - f.RingFull
	if err := t.objs.Seen.Lookup(uint32(0), &f.Counted); err != nil {
		return f, fmt.Errorf("read seen: %w", err)
	}
	var e event
	for t.objs.Important.LookupAndDelete(nil, &e) == nil {
		f.QueueLeft++
	}
	return f, nil
}
