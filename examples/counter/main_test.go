package main

import (
	"context"
	"strings"
	"testing"

	"github.com/bpfchan/bpfchan/examples/internal/clitest"
	"github.com/bpfchan/bpfchan/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestRun runs the dashboard briefly with a threshold the first round of
// kernel events crosses, and checks that the figures reconcile (the
// program's own check: every counter equals what the BPF programs and
// maps.Add added, each watcher's last value is the map's, one alert).
func TestRun(t *testing.T) {
	out := clitest.Run(context.Background(), t, run, "-duration", "300ms", "-interval", "100ms", "-threshold", "1")
	clitest.Contains(t, out,
		"CompareAndSwap 111 -> 300 (stale): PASS",
		"ALERT: syscalls exceeded threshold!",
		"alerts: syscalls went above 1 1 time(s)",
		"the figures reconcile",
	)
}

// TestNoAlert checks that a threshold never reached raises no alert.
func TestNoAlert(t *testing.T) {
	out := clitest.Run(context.Background(), t, run, "-duration", "100ms", "-threshold", "1000000000")
	if strings.Contains(out, "ALERT") || !strings.Contains(out, "went above 1000000000 0 time(s)") {
		t.Errorf("want no alert:\n%s", out)
	}
}

// TestCancel checks that cancelling the context (Ctrl-C) ends the run
// gracefully, with figures that reconcile.
func TestCancel(t *testing.T) {
	clitest.Cancelled(t, run, "-duration", "0")
}

func TestBadFlags(t *testing.T) {
	clitest.Usage(t, run, []string{"extra"}, []string{"-interval", "0"}, []string{"-duration", "-1s"}, []string{"-window", "0"}, []string{"-nosuchflag"})
}
