package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	bpfmaps "github.com/bpfchan/bpfchan/maps"
	"github.com/bpfchan/bpfchan/pipeline"
	"github.com/bpfchan/bpfchan/watch"
)

// seen is what a counter's watcher has observed.
type seen struct {
	changes atomic.Uint64 // changes reported by watch.Changes
	last    atomic.Uint64 // the latest value reported
	alerts  atomic.Uint64 // threshold crossings
}

// result holds the final figures.
type result struct {
	elapsed time.Duration
	rows    []row
}

type row struct {
	name                      string
	value                     uint64 // in the map at the end
	runs, delta, kernel, user uint64 // BPF program runs × delta = kernel; user: maps.Add from Go
	changes, last, alerts     uint64 // what the watcher saw
	watched                   bool   // the threshold applies to this counter
}

// dashboard runs the lab: kernel events added by the BPF programs (and a few
// from userspace) every tick, a watcher per counter raising threshold
// alerts, and a dashboard refreshed every interval, until the duration ends
// or ctx is cancelled. It then stops everything gracefully and returns the
// final figures.
func dashboard(ctx context.Context, cfg config, b *board, out io.Writer) (result, error) {
	// The group does not inherit ctx's cancellation: Ctrl-C stops it
	// gracefully (Stop), so the watchers report the final values.
	g, gctx := pipeline.New(context.WithoutCancel(ctx))
	seens := make([]*seen, len(b.counters))
	var setupErr error
	for i, c := range b.counters {
		w, err := watch.Changes[uint32, uint64](gctx, b.stats.Map(), c.key)
		if err != nil {
			setupErr = fmt.Errorf("watch %s: %w", c.name, err)
			break
		}
		s := &seen{}
		seens[i] = s
		alerting := c.key == eventSyscall
		pipeline.ForEach(g, pipeline.From(g, w), func(_ context.Context, ch watch.Change[uint64]) error {
			s.changes.Add(1)
			s.last.Store(ch.New)
			if alerting && ch.Old <= cfg.threshold && ch.New > cfg.threshold {
				s.alerts.Add(1)
				fmt.Fprintf(out, "ALERT: %s exceeded threshold! Value: %d > %d\n", c.name, ch.New, cfg.threshold)
			}
			return nil
		}, pipeline.Name("watch "+c.name))
	}
	if setupErr != nil {
		g.Stop()
		return result{}, errors.Join(setupErr, g.Wait())
	}

	stopEvents := make(chan struct{})
	eventsDone := make(chan struct{})
	g.Go("kernel events", func(gctx context.Context) error {
		defer close(eventsDone)
		t := time.NewTicker(cfg.tick)
		defer t.Stop()
		for i := 0; ; i++ {
			if err := b.round(i); err != nil {
				return err
			}
			select {
			case <-t.C:
			case <-stopEvents:
				return nil
			case <-gctx.Done():
				return nil
			}
		}
	})

	start := time.Now()
	loopErr := refreshLoop(ctx, gctx, cfg, b, out, start)
	close(stopEvents)
	<-eventsDone
	g.Stop() // every watcher polls once more and delivers what it has
	if err := errors.Join(loopErr, g.Wait()); err != nil {
		return result{}, err
	}

	res := result{elapsed: time.Since(start)}
	for i, c := range b.counters {
		v, err := c.entry.Load()
		if err != nil {
			return result{}, fmt.Errorf("load %s: %w", c.name, err)
		}
		runs, added, err := c.kernelAdded()
		if err != nil {
			return result{}, err
		}
		res.rows = append(res.rows, row{
			name: c.name, value: v, runs: runs, delta: uint64(c.delta), kernel: added, user: c.userAdds,
			changes: seens[i].changes.Load(), last: seens[i].last.Load(), alerts: seens[i].alerts.Load(),
			watched: c.key == eventSyscall,
		})
	}
	return res, nil
}

// refreshLoop prints the dashboard every interval until the duration ends,
// ctx is cancelled (Ctrl-C) or the group fails (gctx).
func refreshLoop(ctx, gctx context.Context, cfg config, b *board, out io.Writer, start time.Time) error {
	var deadline <-chan time.Time
	if cfg.duration > 0 {
		t := time.NewTimer(cfg.duration)
		defer t.Stop()
		deadline = t.C
	}
	t := time.NewTicker(cfg.interval)
	defer t.Stop()
	prev := start
	for {
		select {
		case now := <-t.C:
			if err := b.refresh(out, now.Sub(start), now.Sub(prev), cfg.window); err != nil {
				return err
			}
			prev = now
		case <-deadline:
			return nil
		case <-ctx.Done():
			return nil
		case <-gctx.Done():
			return nil // the group failed: Wait says why
		}
	}
}

// round is one tick of kernel events: each counter's BPF program runs a
// varying number of times (each run is one event), while a goroutine adds 2
// to file-closes from userspace with maps.Add, into the same map value the
// kernel is adding to.
func (b *board) round(i int) error {
	runs := []int{20 + 10*(i%7), 2 + i%3, 5 + i%5, 4 + i%4}
	closes := b.counters[3]
	var wg sync.WaitGroup
	var userErr error
	wg.Go(func() {
		for range 2 {
			if _, err := bpfmaps.Add(closes.entry, 1); err != nil {
				userErr = fmt.Errorf("add to %s: %w", closes.name, err)
				return
			}
			closes.userAdds++
		}
	})
	var err error
	for j, c := range b.counters {
		if err = c.prog.Run(runs[j]); err != nil {
			err = fmt.Errorf("run the BPF program adding to %s: %w", c.name, err)
			break
		}
	}
	wg.Wait()
	return errors.Join(err, userErr)
}

// refresh prints the counters as Entry.Load reads them, with the rate since
// the previous refresh and its rolling average.
func (b *board) refresh(out io.Writer, at, since time.Duration, window int) error {
	var s []byte
	s = fmt.Appendf(s, "\n=== Event Statistics at %.1fs ===\n", at.Seconds())
	for _, c := range b.counters {
		v, err := c.entry.Load()
		if err != nil {
			return fmt.Errorf("load %s: %w", c.name, err)
		}
		delta, avg := c.rolling(v, window)
		secs := since.Seconds()
		s = fmt.Appendf(s, "%-12s %12d %12.1f/s   avg %10.1f/s over %d\n",
			c.name+":", v, float64(delta)/secs, avg/secs, len(c.window))
	}
	_, err := out.Write(s)
	return err
}

// write prints the final figures and reports whether they reconcile.
func (r result) write(out io.Writer, cfg config) bool {
	var s []byte
	s = fmt.Appendf(s, "\n=== Final figures after %.1fs ===\n", r.elapsed.Seconds())
	s = fmt.Appendf(s, "%-12s %12s %20s %12s %10s %12s\n", "counter", "in the map", "BPF runs × delta", "maps.Add", "changes", "last seen")
	var problems []string
	var alerts []byte
	for _, w := range r.rows {
		s = fmt.Appendf(s, "%-12s %12d %11d × %-6d %12d %10d %12d\n",
			w.name, w.value, w.runs, w.delta, w.user, w.changes, w.last)
		if w.value != w.kernel+w.user {
			problems = append(problems, fmt.Sprintf("%s: %d in the map, but the kernel added %d and userspace %d", w.name, w.value, w.kernel, w.user))
		}
		if w.last != w.value {
			problems = append(problems, fmt.Sprintf("%s: the watcher last saw %d, the map holds %d", w.name, w.last, w.value))
		}
		if w.watched {
			want := uint64(0)
			if w.value > cfg.threshold {
				want = 1
			}
			alerts = fmt.Appendf(alerts, "alerts: %s went above %d %d time(s)\n", w.name, cfg.threshold, w.alerts)
			if w.alerts != want {
				problems = append(problems, fmt.Sprintf("%s: %d alerts for a final value of %d and a threshold of %d, want %d", w.name, w.alerts, w.value, cfg.threshold, want))
			}
		}
	}
	s = append(s, alerts...)
	if len(problems) == 0 {
		s = fmt.Appendf(s, "the figures reconcile: every counter = BPF runs × delta + userspace adds, and each watcher's last value is the map's\n")
	} else {
		for _, p := range problems {
			s = fmt.Appendf(s, "DOES NOT RECONCILE: %s\n", p)
		}
	}
	out.Write(s)
	return len(problems) == 0
}
