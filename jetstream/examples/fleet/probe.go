package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	bpfmaps "github.com/bpfchan/bpfchan/maps"
)

// event is one system call entry as the probe writes it into its ring
// (struct event in bpf/probe.c): 40 bytes, no padding.
type event = probeEvent

// eventBlocked is the flag of an event from a blocked command.
const eventBlocked = 1

// recordSize is the room one event takes in the ring: the kernel's 8-byte
// record header and the event, rounded up to 8 bytes. The probe writes
// every record it reserves, so record n of a ring is at position
// n*recordSize.
const recordSize = uint64(8+unsafe.Sizeof(event{})+7) &^ 7

// The probe's counters (enum counter in bpf/probe.c), per CPU.
const (
	cEvents      uint32 = iota // events the probe tried to write
	cRingFull                  // of those, not written: the ring was full
	cBlocked                   // events of blocked commands it tried to write
	cBlockedFull               // of those, not written: the ring was full
	cFinished                  // runs that passed the gate and finished
	nCounters
)

// The pins of a node, in its directory: the maps (pinned by name) and the
// link that keeps the probe attached while no agent runs.
const (
	pinLink   = "link"
	pinEvents = "events"
)

// tracepoint is the hook: the raw tracepoint of every system call entry.
const tracepoint = "sys_enter"

// probeConfig is what a node's probe is loaded with.
type probeConfig struct {
	Dir      string // the node's pin directory, on a bpffs
	Index    int    // the node's share: processes whose tgid % Nodes == Index
	Nodes    int
	SelfComm string // the fleet's own command name, never traced
	RingSize int    // bytes: a power of two, a multiple of the page size
}

// attachInfo says what openProbe found and did.
type attachInfo struct {
	// Restarted: the maps were pinned already, so another agent ran on
	// them before (it may have been killed).
	Restarted bool `json:"restarted"`
	// Reattached: on a restart, the pinned link was missing, so the
	// program was attached again (and the link pinned).
	Reattached bool   `json:"reattached"`
	LinkID     uint32 `json:"link_id"`
	ProgID     uint32 `json:"prog_id"`
	RingMapID  uint32 `json:"ring_map_id"`
}

// probe is a node's kernel side: its maps, pinned in the node's directory,
// the pinned link of its program on sys_enter, and the program that closes
// its gate.
type probe struct {
	dir       string
	maps      probeMaps
	closeGate *ebpf.Program
	link      link.Link // nil once detached
	counters  *bpfmaps.PerCPUMap[uint32, uint64]
	gate      *bpfmaps.Map[uint32, probeGate]
}

// probeSpec returns the probe's collection, set up for cfg: its share, its
// ring size, and every map pinned by name in cfg.Dir.
func probeSpec(cfg probeConfig) (*ebpf.CollectionSpec, error) {
	spec, err := loadProbe()
	if err != nil {
		return nil, err
	}
	var comm [16]byte
	copy(comm[:15], cfg.SelfComm)
	for name, v := range map[string]any{
		probeVarNodeIndex: uint32(cfg.Index),
		probeVarNodes:     uint32(cfg.Nodes),
		probeVarSelfComm:  comm,
	} {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("set %s: %w", name, err)
		}
	}
	spec.Maps[probeMapEvents].MaxEntries = uint32(cfg.RingSize)
	for _, m := range spec.Maps {
		if m.Name != ".rodata" {
			m.Pinning = ebpf.PinByName
		}
	}
	return spec, nil
}

// openProbe loads the probe of a node. On the node's first start it
// creates the maps, pins them, attaches the program to sys_enter and pins
// the link. On a restart it opens the pinned maps and link, and checks that
// the link still attaches a program to sys_enter that writes into the
// pinned ring; if the link is gone, it attaches the program again.
func openProbe(cfg probeConfig) (_ *probe, info attachInfo, err error) {
	spec, err := probeSpec(cfg)
	if err != nil {
		return nil, info, err
	}
	_, err = os.Stat(filepath.Join(cfg.Dir, pinEvents))
	info.Restarted = err == nil
	p := &probe{dir: cfg.Dir}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	var objs struct {
		probeMaps
		CloseGate *ebpf.Program `ebpf:"close_gate"`
	}
	opts := &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: cfg.Dir}}
	if err := spec.LoadAndAssign(&objs, opts); err != nil {
		return nil, info, fmt.Errorf("load the probe's maps: %w", err)
	}
	p.maps, p.closeGate = objs.probeMaps, objs.CloseGate
	if p.counters, err = bpfmaps.OpenPerCPU[uint32, uint64](p.maps.Counters); err != nil {
		return nil, info, err
	}
	if p.gate, err = bpfmaps.Open[uint32, probeGate](p.maps.Gate); err != nil {
		return nil, info, err
	}
	if mi, err := p.maps.Events.Info(); err == nil {
		id, _ := mi.ID()
		info.RingMapID = uint32(id)
	}

	pin := filepath.Join(cfg.Dir, pinLink)
	if info.Restarted {
		p.link, err = link.LoadPinnedLink(pin, nil)
		switch {
		case err == nil:
			return p, info, p.checkAttached(&info)
		case !errors.Is(err, os.ErrNotExist):
			return nil, info, fmt.Errorf("open the pinned link: %w", err)
		}
		info.Reattached = true
	}
	if err := p.attach(spec, opts, pin); err != nil {
		return nil, info, err
	}
	return p, info, p.checkAttached(&info)
}

// attach loads the program, attaches it to sys_enter and pins the link.
func (p *probe) attach(spec *ebpf.CollectionSpec, opts *ebpf.CollectionOptions, pin string) error {
	var progs struct {
		OnSysEnter *ebpf.Program `ebpf:"on_sys_enter"`
	}
	if err := spec.LoadAndAssign(&progs, opts); err != nil {
		return fmt.Errorf("load the probe: %w", err)
	}
	defer progs.OnSysEnter.Close() // the link holds it
	l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: tracepoint, Program: progs.OnSysEnter})
	if err != nil {
		return fmt.Errorf("attach the raw tracepoint %s: %w", tracepoint, err)
	}
	if err := l.Pin(pin); err != nil {
		l.Close()
		return fmt.Errorf("pin the link: %w", err)
	}
	p.link = l
	return nil
}

// checkAttached checks, from the kernel's own records, that the link
// attaches a program to sys_enter and that the program writes into this
// node's ring (the ring's map is one of the program's maps).
func (p *probe) checkAttached(info *attachInfo) error {
	li, err := p.link.Info()
	if err != nil {
		return fmt.Errorf("read the link's info: %w", err)
	}
	info.LinkID, info.ProgID = uint32(li.ID), uint32(li.Program)
	rt := li.RawTracepoint()
	if li.Type != link.RawTracepointType || rt == nil || rt.Name != tracepoint {
		return fmt.Errorf("link %d is not attached to the raw tracepoint %s", li.ID, tracepoint)
	}
	prog, err := ebpf.NewProgramFromID(li.Program)
	if err != nil {
		return fmt.Errorf("open program %d of link %d: %w", li.Program, li.ID, err)
	}
	defer prog.Close()
	pi, err := prog.Info()
	if err != nil {
		return fmt.Errorf("read program %d's info: %w", li.Program, err)
	}
	ids, _ := pi.MapIDs()
	if !slices.Contains(ids, ebpf.MapID(info.RingMapID)) {
		return fmt.Errorf("program %d of link %d does not write into the pinned ring (map %d; its maps: %v)", li.Program, li.ID, info.RingMapID, ids)
	}
	return nil
}

// figures reads the probe's counters, summed over the CPUs.
func (p *probe) figures() (kernelFigures, error) {
	return readCounters(p.counters)
}

// quiesceTimeout bounds how long quiesce waits for the runs under way.
const quiesceTimeout = 5 * time.Second

// quiesce stops the probe for good: it closes the gate (no run counts or
// writes anything afterwards), waits until every run admitted before has
// finished, then detaches the program. Once it returns, the counters are
// final and the ring holds every event the probe wrote. It returns how many
// runs got through the gate.
func (p *probe) quiesce() (passed uint64, err error) {
	ret, err := p.closeGate.Run(&ebpf.RunOptions{})
	if err != nil {
		return 0, fmt.Errorf("close the gate: %w", err)
	}
	if ret != 0 && ret != 2 { // 2: closed already
		return 0, fmt.Errorf("close the gate: the program returned %d", ret)
	}
	g, err := p.gate.Lookup(0)
	if err != nil {
		return 0, fmt.Errorf("read the gate: %w", err)
	}
	// A run admitted before the gate closed takes microseconds, unless its
	// task was preempted: look again, backing off, until the last is done.
	deadline := time.Now().Add(quiesceTimeout)
	for pause := 50 * time.Microsecond; ; pause = min(2*pause, 10*time.Millisecond) {
		k, err := p.figures()
		if err != nil {
			return 0, err
		}
		if k.Finished == g.Passed {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%d of %d probe runs still unfinished after %s", g.Passed-k.Finished, g.Passed, quiesceTimeout)
		}
		time.Sleep(pause)
	}
	return g.Passed, p.detach()
}

// detach unpins and closes the link: the program is detached.
func (p *probe) detach() error {
	if p.link == nil {
		return nil
	}
	err := joinErrors(p.link.Unpin(), p.link.Close())
	p.link = nil
	if err != nil {
		return fmt.Errorf("detach: %w", err)
	}
	return nil
}

// Close closes the probe's descriptors. The pins stay: a link still pinned
// keeps the program attached.
func (p *probe) Close() error {
	var errs []error
	if p.link != nil {
		errs = append(errs, p.link.Close())
	}
	if p.counters != nil {
		errs = append(errs, p.counters.Close())
	}
	if p.gate != nil {
		errs = append(errs, p.gate.Close())
	}
	// Both close nil maps and programs without complaint.
	errs = append(errs, p.maps.Close(), p.closeGate.Close())
	return joinErrors(errs...)
}

// kernelFigures is what a node's probe counted, summed over the CPUs.
type kernelFigures struct {
	Events      uint64 `json:"events"`            // events the probe tried to write
	RingFull    uint64 `json:"ring_full"`         // of those, not written: the ring was full
	Blocked     uint64 `json:"blocked"`           // events of blocked commands it tried to write
	BlockedFull uint64 `json:"blocked_ring_full"` // of those, ring full
	Finished    uint64 `json:"-"`                 // runs through the gate that finished
}

// Written is how many events the probe wrote into its ring.
func (k kernelFigures) Written() uint64 { return k.Events - k.RingFull }

// readCounters reads a probe's counters map, summed over the CPUs.
func readCounters(m *bpfmaps.PerCPUMap[uint32, uint64]) (kernelFigures, error) {
	var v [nCounters]uint64
	for i := range nCounters {
		per, err := m.Lookup(i)
		if err != nil {
			return kernelFigures{}, fmt.Errorf("read counter %d: %w", i, err)
		}
		v[i] = bpfmaps.Sum(per)
	}
	return kernelFigures{Events: v[cEvents], RingFull: v[cRingFull], Blocked: v[cBlocked], BlockedFull: v[cBlockedFull], Finished: v[cFinished]}, nil
}

// openCounters opens the counters a node's probe pinned in dir, for the
// parent, which reads them whether or not the node's agent runs.
func openCounters(dir string) (*bpfmaps.PerCPUMap[uint32, uint64], error) {
	m, err := ebpf.LoadPinnedMap(filepath.Join(dir, probeMapCounters), &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("open the pinned counters: %w", err)
	}
	defer m.Close() // OpenPerCPU holds a clone
	return bpfmaps.OpenPerCPU[uint32, uint64](m)
}
