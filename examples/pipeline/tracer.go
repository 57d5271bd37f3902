package main

import (
	"errors"
	"fmt"
	"os"

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

// tracer owns the loaded BPF objects and the raw tracepoint link.
type tracer struct {
	objs tracerObjects
	link link.Link
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
	t.link, err = link.AttachRawTracepoint(link.RawTracepointOptions{
		Name:    "sys_enter",
		Program: t.objs.OnSysEnter,
	})
	if err != nil {
		t.objs.Close()
		return nil, fmt.Errorf("attach raw tracepoint sys_enter: %w", err)
	}
	return t, nil
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
	return errors.Join(t.Detach(), t.objs.Close())
}

// drops reads the kernel's drop counters.
func (t *tracer) drops() (ringFull, uncounted uint64, err error) {
	if err := t.objs.Drops.Lookup(dropRingFull, &ringFull); err != nil {
		return 0, 0, fmt.Errorf("read drops: %w", err)
	}
	if err := t.objs.Drops.Lookup(dropUncounted, &uncounted); err != nil {
		return 0, 0, fmt.Errorf("read drops: %w", err)
	}
	return ringFull, uncounted, nil
}
