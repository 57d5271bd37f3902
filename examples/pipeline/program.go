package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	bpfmaps "github.com/bpfchan/bpfchan/maps"
	"github.com/bpfchan/bpfchan/metrics"
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
	// Export adds its pumps, watcher and Group to c.
	Export(c *metrics.Collector)
}

// runPipeline runs the flow over tr's maps until ctx is done or
// cfg.duration has passed, drawing the live view, then stops everything
// gracefully and returns the final summary.
func runPipeline(ctx context.Context, cfg config, tr *tracer, stdout, stderr io.Writer) (*summary, error) {
	// Ctrl-C (ctx) asks for a graceful stop; only a failure aborts the flow.
	flowCtx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(errors.New("pipeline: finished"))

	// Listen first: an address that cannot be had fails before anything
	// starts.
	var ln net.Listener
	if cfg.metrics != "" {
		var err error
		if ln, err = net.Listen("tcp", cfg.metrics); err != nil {
			return nil, fmt.Errorf("serve metrics: %w", err)
		}
	}
	t := newTally()
	f, err := startFlow(flowCtx, cfg, tr, t)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return nil, err
	}
	var metricsURL string
	if ln != nil {
		srv := serveMetrics(ln, f)
		defer func() {
			if err := srv.shutdown(); err != nil {
				fmt.Fprintf(stderr, "pipeline: metrics server: %v\n", err)
			}
		}()
		metricsURL = "http://" + ln.Addr().String() + "/metrics"
		fmt.Fprintf(stderr, "pipeline: serving metrics at %s\n", metricsURL)
	}

	out := stdout
	if cfg.json {
		out = stderr
	}
	v := newView(out, cfg, tr, t, f.Figures)
	v.metricsURL = metricsURL
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

	// Stop the kernel side first, so that its figures are final and the
	// ring buffer holds everything the flow still has to process.
	// The pump's graceful Close then delivers what the ring held when it
	// saw the Close: with the tracer quiesced, that is every event.
	runs, quiesceErr := tr.Quiesce()
	f.Stop()
	err = errors.Join(quiesceErr, f.Wait())
	elapsed := time.Since(v.start)
	if v.tty {
		v.render(time.Now()) // the last frame stays on screen above the summary
	}
	if err != nil {
		return nil, err
	}
	k, err := tr.final(runs)
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
func (t *tracer) final(runs uint64) (finalFigures, error) {
	f := finalFigures{kernelFigures: kernelFigures{Syscalls: runs}}
	var err error
	if f.RingFull, f.Uncounted, err = t.kernelDrops(); err != nil {
		return f, err
	}
	f.counts = make(map[uint32]uint64)
	for nr, n := range t.counts.All(&err) {
		f.counts[nr] = n
		f.InCounts += n
	}
	if err != nil {
		return f, err
	}
	f.Written = f.Syscalls - f.RingFull
	if f.Counted, err = t.seen.Lookup(0); err != nil {
		return f, err
	}
	for {
		_, err := t.important.Pop()
		if errors.Is(err, bpfmaps.ErrEmpty) {
			break
		}
		if err != nil {
			return f, err
		}
		f.QueueLeft++
	}
	return f, nil
}
