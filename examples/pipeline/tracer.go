package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	bpfmaps "github.com/bpfchan/bpfchan/maps"
	"github.com/cilium/ebpf"

	"github.com/cilium/ebpf/link"
)

// event is one syscall entry, as the BPF program writes it into the ring
// buffer (struct event in bpf/tracer.c): 40 bytes, no padding.
type event = tracerEvent

// Indexes into the drops map (enum drop_reason in bpf/tracer.c).
const (
	dropRingFull  uint32 = 0 // the ring buffer had no room: the event was not written
	dropUncounted uint32 = 1 // the counts map was full: the event was written, not counted
)

// tracer owns the loaded BPF objects, typed views of its maps, and the raw
// tracepoint link.
type tracer struct {
	objs tracerObjects
	link link.Link

	counts    *bpfmaps.Map[uint32, uint64] // syscall nr -> times seen, written by the program
	drops     *bpfmaps.Map[uint32, uint64] // drop reason -> count, written by the program
	seen      *bpfmaps.Map[uint32, uint64] // [0]: events counted by the count stage
	important *bpfmaps.Queue[event]        // the important events, from the writer to the worker
	gate      *bpfmaps.Map[uint32, tracerGate]
	finished  *bpfmaps.PerCPUMap[uint32, uint64]
}

// loadTracer loads the BPF object and attaches it to the raw tracepoint
// sys_enter. Unless traceSelf, the calling process is not traced.
func openTracer(traceSelf bool) (*tracer, error) {
	spec, err := loadTracer()
	if err != nil {
		return nil, err
	}
	if !traceSelf {
		if err := spec.Variables[tracerVarSelfTgid].Set(uint32(os.Getpid())); err != nil {
			return nil, fmt.Errorf("set self_tgid: %w", err)
		}
	}
	t := &tracer{}
	if err := spec.LoadAndAssign(&t.objs, nil); err != nil {
		return nil, fmt.Errorf("load BPF objects: %w", err)
	}
	if err := t.open(); err != nil {
		t.Close()
		return nil, err
	}
	t.link, err = link.AttachRawTracepoint(link.RawTracepointOptions{
		Name:    "sys_enter",
		Program: t.objs.OnSysEnter,
	})
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("attach raw tracepoint sys_enter: %w", err)
	}
	return t, nil
}

func (t *tracer) open() (err error) {
	if t.counts, err = bpfmaps.Open[uint32, uint64](t.objs.Counts); err != nil {
		return err
	}
	if t.drops, err = bpfmaps.Open[uint32, uint64](t.objs.Drops); err != nil {
		return err
	}
	if t.seen, err = bpfmaps.Open[uint32, uint64](t.objs.Seen); err != nil {
		return err
	}
	if t.gate, err = bpfmaps.Open[uint32, tracerGate](t.objs.Gate); err != nil {
		return err
	}
	if t.finished, err = bpfmaps.OpenPerCPU[uint32, uint64](t.objs.Finished); err != nil {
		return err
	}
	t.important, err = bpfmaps.OpenQueue[event](t.objs.Important)
	return err
}

// settleTimeout bounds how long Quiesce waits for the runs under way.
const settleTimeout = 5 * time.Second

// Quiesce stops the program for good and returns how many runs it made:
// it closes the gate (no run counts or writes anything afterwards), waits
// until every run admitted before has finished, then detaches. Once it
// returns, the ring buffer holds every event the flow has yet to process,
// and the kernel figures are final.
func (t *tracer) Quiesce() (runs uint64, err error) {
	ret, err := t.objs.CloseGate.Run(&ebpf.RunOptions{})
	if err != nil {
		return 0, fmt.Errorf("close the gate: %w", err)
	}
	if ret != 0 && ret != 2 { // 2: closed already
		return 0, fmt.Errorf("close the gate: program returned %d", ret)
	}
	g, err := t.gate.Lookup(0)
	if err != nil {
		return 0, err
	}
	// A run admitted before the gate closed takes microseconds, unless its
	// task was preempted: poll, backing off, until the last one is done.
	deadline := time.Now().Add(settleTimeout)
	for pause := 50 * time.Microsecond; ; pause = min(2*pause, 10*time.Millisecond) {
		per, err := t.finished.Lookup(0)
		if err != nil {
			return 0, err
		}
		done := bpfmaps.Sum(per)
		if done == g.Passed {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%d of %d BPF program runs still unfinished after %s", g.Passed-done, g.Passed, settleTimeout)
		}
		time.Sleep(pause)
	}
	return g.Passed, t.Detach()
}

// Detach stops the program: once it returns, no new event is produced and
// every program run has finished, so the kernel-side figures are final.
func (t *tracer) Detach() error {
	if t.link == nil {
		return nil
	}
	err := t.link.Close()
	t.link = nil
	return err
}

// Close detaches the program and closes every map.
func (t *tracer) Close() error {
	errs := []error{t.Detach()}
	for _, m := range []*bpfmaps.Map[uint32, uint64]{t.counts, t.drops, t.seen} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	if t.gate != nil {
		errs = append(errs, t.gate.Close())
	}
	if t.finished != nil {
		errs = append(errs, t.finished.Close())
	}
	if t.important != nil {
		errs = append(errs, t.important.Close())
	}
	return errors.Join(append(errs, t.objs.Close())...)
}

// kernelDrops reads the kernel's drop counters.
func (t *tracer) kernelDrops() (ringFull, uncounted uint64, err error) {
	if ringFull, err = t.drops.Lookup(dropRingFull); err != nil {
		return 0, 0, err
	}
	if uncounted, err = t.drops.Lookup(dropUncounted); err != nil {
		return 0, 0, err
	}
	return ringFull, uncounted, nil
}
