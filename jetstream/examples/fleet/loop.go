package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	js "github.com/nats-io/nats.go/jetstream"
)

// The crash's burst: the agent is killed once its probe has written
// burstKill events since the burst began, or after burstWait.
const (
	burstKill = 20_000
	burstWait = time.Second
)

// step is one thing the run does at a time after the start of its loop.
type step struct {
	at   time.Duration
	what int
}

// The steps of a run.
const (
	stepBlock   = iota // put -block into the bucket
	stepCrash          // kill node-1's agent in a burst, restart it
	stepUnblock        // delete -block from the bucket
	stepEnd            // the end of -duration
)

// schedule returns the run's steps in the order they come: -block put a
// quarter into -duration, node-1 killed halfway, -block deleted at three
// quarters, the end (without -duration: at 3s, 5s and 8s, no end).
func (f *fleet) schedule() []step {
	block, crash, unblock := 3*time.Second, 5*time.Second, 8*time.Second
	if d := f.cfg.duration; d > 0 {
		block, crash, unblock = d/4, d/2, 3*d/4
	}
	var steps []step
	if f.cfg.block != "" {
		steps = append(steps, step{block, stepBlock}, step{unblock, stepUnblock})
	}
	if f.cfg.crash {
		steps = append(steps, step{crash, stepCrash})
	}
	if f.cfg.duration > 0 {
		steps = append(steps, step{f.cfg.duration, stepEnd})
	}
	slices.SortStableFunc(steps, func(a, b step) int { return cmp.Compare(a.at, b.at) })
	return steps
}

// loop draws the live view and runs the schedule until stop, abort, the
// end of -duration, or a failure (returned). The steps run one after the
// other, in their order, however late the loop gets to them.
func (f *fleet) loop(stop, abort context.Context) error {
	ctx := abort
	w, err := f.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch bucket %s: %w", bucketName, err)
	}
	defer w.Stop()
	start := time.Now()
	steps := f.schedule()
	next := time.NewTimer(time.Hour)
	defer next.Stop()
	arm := func() {
		if len(steps) > 0 {
			next.Reset(time.Until(start.Add(steps[0].at)))
		}
	}
	arm()
	tick := time.NewTicker(f.view.interval)
	defer tick.Stop()

	var crashed chan error // the restart's outcome, while a crash is under way
	var failure error
loop:
	for {
		select {
		case now := <-tick.C:
			f.render(ctx, now)
		case e := <-w.Updates():
			f.watched(e)
		case <-next.C:
			if len(steps) == 0 {
				continue
			}
			st := steps[0]
			steps = steps[1:]
			switch st.what {
			case stepBlock:
				failure = f.block(ctx, true)
			case stepUnblock:
				failure = f.block(ctx, false)
			case stepCrash:
				crashed = make(chan error, 1)
				go func() { crashed <- f.crash(stop, abort, f.nodes[0]) }() // owned: waited for below
			case stepEnd:
				break loop
			}
			if failure != nil {
				break loop
			}
			arm()
		case err := <-crashed:
			crashed = nil
			if err != nil {
				failure = err
				break loop
			}
		case n := <-f.failed:
			failure = fmt.Errorf("%s: the agent exited unexpectedly", n.name)
			break loop
		case <-stop.Done():
			break loop
		case <-abort.Done():
			break loop
		}
	}
	if crashed != nil {
		// The killed node must be back to forward what its ring kept.
		if err := <-crashed; err != nil && failure == nil {
			failure = err
		}
	}
	if f.putBlock && failure == nil {
		// Stopped early: the bucket is left as the run found it.
		failure = f.block(ctx, false)
	}
	if f.view.tty {
		f.render(ctx, time.Now()) // the last frame stays above the summary
	}
	return failure
}

// block puts -block into the bucket (on) or deletes it.
func (f *fleet) block(ctx context.Context, on bool) error {
	if on {
		if _, err := f.kv.Put(ctx, f.cfg.block, []byte("1")); err != nil {
			return fmt.Errorf("block %s: %w", f.cfg.block, err)
		}
		f.putBlock = true
		f.view.note("bucket %s: put %q: every node's probe flags its events from now on", bucketName, f.cfg.block)
		return nil
	}
	if err := f.kv.Delete(ctx, f.cfg.block); err != nil {
		return fmt.Errorf("unblock %s: %w", f.cfg.block, err)
	}
	f.putBlock = false
	f.view.note("bucket %s: deleted %q", bucketName, f.cfg.block)
	return nil
}

// watched takes in one change of the bucket, from anyone.
func (f *fleet) watched(e js.KeyValueEntry) {
	if e == nil {
		return // the end of the initial values
	}
	switch e.Operation() {
	case js.KeyValuePut:
		if !slices.Contains(f.blocked, e.Key()) {
			f.blocked = append(f.blocked, e.Key())
		}
	default:
		f.blocked = slices.DeleteFunc(f.blocked, func(k string) bool { return k == e.Key() })
	}
}

// crash kills n's agent with SIGKILL in the middle of a burst of system
// calls in its share, leaves it down for -down (less if the run stops
// meanwhile), and starts it again on the same pins.
func (f *fleet) crash(stop, abort context.Context, n *node) error {
	k0, err := n.kernel()
	if err != nil {
		return err
	}
	defer burst(abort, n.config.Probe.Index, f.cfg.nodes)()
	// In the middle: once the probe has written burstKill events more, or
	// after burstWait if the burst did not come (no dd).
	deadline := time.Now().Add(burstWait)
	for k := k0; k.Events-k0.Events < burstKill && time.Now().Before(deadline) && abort.Err() == nil; {
		time.Sleep(2 * time.Millisecond)
		if k, err = n.kernel(); err != nil {
			return err
		}
	}
	n.crash()
	k, _ := n.kernel()
	f.view.note("%s: agent killed (SIGKILL) in a burst, %s events its probe wrote not in the stream yet; the probe writes on",
		n.name, num(backlog(k, f.col.snapshot()[n.name])))
	t := time.NewTimer(f.cfg.down)
	select {
	case <-t.C:
	case <-stop.Done():
	case <-abort.Done():
	}
	t.Stop()
	if err := n.launch(abort, f.exe, f.stderr, f.failed); err != nil {
		return err
	}
	if f.msrv != nil {
		f.msrv.restarted(n)
	}
	up := n.view().Up
	how := "still attaches"
	if up.Reattached {
		how = "was gone: attached again"
	}
	f.view.note("%s: agent restarted on its pins in %.2fs: link %d %s program %d to %s, seen writing into ring map %d (%s)",
		n.name, up.Seconds, up.LinkID, how, up.ProgID, tracepoint, up.RingMapID, up.Writing)
	return nil
}

// render draws a frame of the live view.
func (f *fleet) render(ctx context.Context, now time.Time) {
	in := frameInput{Kernel: map[string]kernelFigures{}, Stream: f.col.snapshot(), Blocked: f.blocked}
	for _, n := range f.nodes {
		in.Nodes = append(in.Nodes, n.view())
		in.Kernel[n.name], _ = n.kernel() // a failed read shows zeros; the summary reports errors
	}
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if info, err := f.stream.Info(rctx); err == nil {
		in.Messages, in.Bytes = info.State.Msgs, info.State.Bytes
	}
	if info, err := f.cons.Info(rctx); err == nil {
		in.Pending = info.NumPending + uint64(info.NumAckPending)
	}
	f.view.render(now, in)
}
