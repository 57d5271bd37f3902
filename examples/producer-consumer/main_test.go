package main

import (
	"context"
	"io"
	"testing"

	"github.com/bpfchan/bpfchan/examples/internal/clitest"
	"github.com/bpfchan/bpfchan/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestExact runs a fixed number of events through queues and a ring big
// enough for all of them, with writers that block when a queue is full, so
// nothing may be dropped: the stats map must hold exactly the categories of
// the events the lab's filter keeps.
func TestExact(t *testing.T) {
	testenv.RequireBPF(t)
	const n = 20000
	cfg, err := parseFlags([]string{"-events", "20000", "-duration", "0", "-rate", "1000000",
		"-full", "block", "-queue", "64", "-ring", "1048576", "-workers", "4"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	l, err := newLab(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fg, err := runFlow(context.Background(), cfg, l, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if p := fg.problems(); len(p) > 0 {
		t.Errorf("figures do not reconcile: %q", p)
	}

	want := map[string]uint64{}
	var filtered uint64
	for seq := range uint64(n) {
		e := parse(RawEvent{Seq: seq})
		if e.discard() {
			filtered++
			continue
		}
		want[e.category()]++
		want["total"]++
	}
	if fg.Produced != n || fg.Dropped() != 0 {
		t.Errorf("produced %d, dropped %d; want %d, 0", fg.Produced, fg.Dropped(), n)
	}
	if fg.Filtered != filtered {
		t.Errorf("filtered %d, want %d", fg.Filtered, filtered)
	}
	for _, k := range statNames {
		if got := fg.Stats[k]; got != want[k] {
			t.Errorf("stats map %s = %d, want %d", k, got, want[k])
		}
	}
	if got, want := len(fg.Enriched), 4; got != want {
		t.Fatalf("%d workers, want %d", got, want)
	}
	for i, c := range fg.Enriched {
		if lo := want["total"] / 4; c != lo && c != lo+1 {
			t.Errorf("worker %d enriched %d, want %d or %d (round-robin)", i, c, lo, lo+1)
		}
	}
}

// TestRun runs the program with tiny queues and ring, so that events are
// dropped at every step, and checks that the figures still reconcile.
func TestRun(t *testing.T) {
	out := clitest.Run(context.Background(), t, run, "-events", "50000", "-duration", "0", "-rate", "1000000",
		"-queue", "4", "-ring", "4096")
	clitest.Contains(t, out, "BPF producer:    50000 events produced", "the figures reconcile")
}

// TestCancel checks that a cancelled context (Ctrl-C) stops the program
// gracefully, with figures that reconcile.
func TestCancel(t *testing.T) {
	clitest.Cancelled(t, run, "-duration", "0")
}

func TestBadFlags(t *testing.T) {
	clitest.Usage(t, run, []string{"extra"}, []string{"-full", "never"}, []string{"-workers", "0"}, []string{"-interval", "0"}, []string{"-ring", "1000"}, []string{"-nosuchflag"})
}
