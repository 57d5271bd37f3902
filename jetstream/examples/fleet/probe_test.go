package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	bpfmaps "github.com/bpfchan/bpfchan/maps"
	"github.com/bpfchan/bpfchan/pump"

	"github.com/bpfchan/bpfchan/jetstream/internal/testenv"
)

// selfComm is this test process's command name.
func selfComm(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// loadDetached loads the probe for cfg without attaching it or pinning
// anything, to run it with BPF_PROG_TEST_RUN: each run is one system call
// entry of this process.
func loadDetached(t *testing.T, cfg probeConfig) *probeObjects {
	t.Helper()
	testenv.RequireBPF(t)
	spec, err := probeSpec(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range spec.Maps {
		m.Pinning = ebpf.PinNone
	}
	var objs probeObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { objs.Close() })
	return &objs
}

// runProbe runs the probe n times as the entry of syscall nr.
func runProbe(t *testing.T, objs *probeObjects, n int, nr uint64) {
	t.Helper()
	for range n {
		if _, err := objs.OnSysEnter.Run(&ebpf.RunOptions{Context: []uint64{0, nr}}); err != nil {
			t.Fatalf("run the probe: %v", err)
		}
	}
}

// probeFigures reads the counters of a probe loaded by loadDetached.
func probeFigures(t *testing.T, objs *probeObjects) kernelFigures {
	t.Helper()
	c, err := bpfmaps.OpenPerCPU[uint32, uint64](objs.Counters)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k, err := readCounters(c)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestProbeCounts: the probe's filter (its share, the fleet's own command),
// its blocked flag, its counters when the ring is full, and its gate, run
// as this process's system call entries.
func TestProbeCounts(t *testing.T) {
	self := selfComm(t)
	pid := os.Getpid()
	const runs, nr = 100, 42
	for _, tc := range []struct {
		name    string
		cfg     probeConfig
		block   bool
		written uint64 // of runs
		full    uint64
	}{
		{"traced", probeConfig{Nodes: 1, SelfComm: "other", RingSize: 1 << 16}, false, runs, 0},
		{"blocked", probeConfig{Nodes: 1, SelfComm: "other", RingSize: 1 << 16}, true, runs, 0},
		{"ring full", probeConfig{Nodes: 1, SelfComm: "other", RingSize: 4096}, true, 4096 / recordSize, runs - 4096/recordSize},
		{"my share", probeConfig{Index: pid % 3, Nodes: 3, SelfComm: "other", RingSize: 1 << 16}, false, runs, 0},
		{"another share", probeConfig{Index: (pid + 1) % 3, Nodes: 3, SelfComm: "other", RingSize: 1 << 16}, false, 0, 0},
		{"the fleet itself", probeConfig{Nodes: 1, SelfComm: self, RingSize: 1 << 16}, false, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := loadDetached(t, tc.cfg)
			if tc.block {
				key, _ := commKey(self)
				if err := objs.Blocked.Put(key, uint32(1)); err != nil {
					t.Fatal(err)
				}
			}
			src, err := pump.RingBufAcked[event](t.Context(), objs.Events)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			runProbe(t, objs, runs, nr)
			k := probeFigures(t, objs)
			counted := tc.written + tc.full
			var blocked, blockedFull uint64
			if tc.block {
				blocked, blockedFull = counted, tc.full
			}
			want := kernelFigures{Events: counted, RingFull: tc.full, Blocked: blocked, BlockedFull: blockedFull, Finished: counted}
			if k != want {
				t.Errorf("got counters %+v, want %+v", k, want)
			}
			if _, produced := src.Positions(); produced != tc.written*recordSize {
				t.Errorf("got the ring's producer at %d, want %d records of %d bytes", produced, tc.written, recordSize)
			}
			if tc.written == 0 {
				return
			}
			b := <-src.C()
			r := b[0]
			if got := commName(r.Value.Comm); got != self || r.Pos != 0 || r.Value.Nr != nr || int(r.Value.Tgid) != pid {
				t.Errorf("got the first record at %d: %s (tgid %d), syscall %d; want at 0: %s (tgid %d), syscall %d",
					r.Pos, got, r.Value.Tgid, r.Value.Nr, self, pid, nr)
			}
			if got := r.Value.Flags&eventBlocked != 0; got != tc.block {
				t.Errorf("got the blocked flag %v, want %v", got, tc.block)
			}
		})
	}
}

// TestProbeGate: once close_gate has run, no run counts or writes, and
// passed is the number of runs admitted before.
func TestProbeGate(t *testing.T) {
	objs := loadDetached(t, probeConfig{Nodes: 1, SelfComm: "other", RingSize: 1 << 16})
	runProbe(t, objs, 10, 1)
	for i, want := range []uint32{0, 2} { // 2: closed already
		if got, err := objs.CloseGate.Run(&ebpf.RunOptions{}); err != nil || got != want {
			t.Fatalf("close the gate, time %d: got %d, %v; want %d", i+1, got, err, want)
		}
	}
	runProbe(t, objs, 10, 1)
	var g probeGate
	if err := objs.Gate.Lookup(uint32(0), &g); err != nil {
		t.Fatal(err)
	}
	if k := probeFigures(t, objs); g.Passed != 10 || k.Events != 10 || k.Finished != 10 {
		t.Errorf("got passed %d, events %d, finished %d; want 10 each", g.Passed, k.Events, k.Finished)
	}
}

// TestProbeRestart attaches the probe to sys_enter for real, on a private
// bpffs: reopened on its pins, it finds the same link, program and ring;
// with its link pin gone, it attaches the program again; quiesced, it is
// detached and its counters stay still.
func TestProbeRestart(t *testing.T) {
	cfg := probeConfig{Dir: testenv.BPFFS(t), Nodes: 1, SelfComm: selfComm(t), RingSize: 1 << 16}
	p1, info1, err := openProbe(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p1.Close() // the pins keep it attached
	if info1.Restarted || info1.Reattached || info1.LinkID == 0 || info1.ProgID == 0 || info1.RingMapID == 0 {
		t.Fatalf("first start: got %+v, want a new link, program and ring", info1)
	}
	sysCalls(t) // the probe traces the machine, this process aside

	p2, info2, err := openProbe(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := info1
	want.Restarted = true
	if info2 != want {
		t.Errorf("restart: got %+v, want %+v", info2, want)
	}
	if k, err := p2.figures(); err != nil || k.Events == 0 {
		t.Errorf("restart: got counters %+v, %v; want the events written while no agent ran", k, err)
	}
	p2.Close()

	// The link pin gone (the program detached with it): the next start
	// attaches the program again, to the same ring.
	if err := os.Remove(filepath.Join(cfg.Dir, pinLink)); err != nil {
		t.Fatal(err)
	}
	p3, info3, err := openProbe(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p3.Close()
	if !info3.Restarted || !info3.Reattached || info3.LinkID == info1.LinkID || info3.RingMapID != info1.RingMapID {
		t.Errorf("link gone: got %+v, want a new link to the ring map %d", info3, info1.RingMapID)
	}
	passed, err := p3.quiesce()
	if err != nil {
		t.Fatal(err)
	}
	k1, err := p3.figures()
	if err != nil {
		t.Fatal(err)
	}
	sysCalls(t)
	k2, err := p3.figures()
	if err != nil {
		t.Fatal(err)
	}
	if k1 != k2 || k1.Finished != passed {
		t.Errorf("quiesced: got counters %+v then %+v, passed %d; want them still, finished == passed", k1, k2, passed)
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, pinLink)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("quiesced: the link pin: got %v, want it gone", err)
	}
	c, err := openCounters(cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if k, err := readCounters(c); err != nil || k != k2 {
		t.Errorf("the parent's read of the pinned counters: got %+v, %v; want %+v", k, err, k2)
	}
}

// sysCalls makes system calls in other processes, which the probe traces.
func sysCalls(t *testing.T) {
	t.Helper()
	for range 5 {
		if err := exec.CommandContext(t.Context(), "true").Run(); err != nil {
			t.Fatalf("run true: %v", err)
		}
	}
}
