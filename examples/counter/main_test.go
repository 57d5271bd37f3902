package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/bpfchan/bpfchan/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestRun runs the dashboard briefly with a threshold the first round of
// kernel events crosses, and checks that the figures reconcile (the
// program's own check: every counter equals what the BPF programs and
// maps.Add added, each watcher's last value is the map's, one alert).
func TestRun(t *testing.T) {
	testenv.RequireBPF(t)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-duration", "300ms", "-interval", "100ms", "-threshold", "1"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("run: exit code %d, want 0; stderr:\n%s\nstdout:\n%s", code, &stderr, &stdout)
	}
	out := stdout.String()
	for _, want := range []string{
		"CompareAndSwap 111 -> 300 (stale): PASS",
		"ALERT: syscalls exceeded threshold!",
		"alerts: syscalls went above 1 1 time(s)",
		"the figures reconcile",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout does not contain %q:\n%s", want, out)
		}
	}
}

// TestNoAlert checks that a threshold never reached raises no alert.
func TestNoAlert(t *testing.T) {
	testenv.RequireBPF(t)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-duration", "100ms", "-threshold", "1000000000"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("run: exit code %d, want 0; stderr:\n%s\nstdout:\n%s", code, &stderr, &stdout)
	}
	if out := stdout.String(); strings.Contains(out, "ALERT") || !strings.Contains(out, "went above 1000000000 0 time(s)") {
		t.Errorf("want no alert:\n%s", out)
	}
}

// TestCancel checks that cancelling the context (Ctrl-C) ends the run
// gracefully, with figures that reconcile.
func TestCancel(t *testing.T) {
	testenv.RequireBPF(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"-duration", "0"}, &stdout, &stderr); code != 0 {
		t.Fatalf("run: exit code %d, want 0; stderr:\n%s\nstdout:\n%s", code, &stderr, &stdout)
	}
	if !strings.Contains(stdout.String(), "the figures reconcile") {
		t.Errorf("stdout:\n%s", &stdout)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"extra"}, {"-interval", "0"}, {"-duration", "-1s"}, {"-window", "0"}, {"-nosuchflag"}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 2 {
			t.Errorf("run %q: exit code %d, want 2", args, code)
		}
		if stderr.Len() == 0 {
			t.Errorf("run %q: nothing on stderr", args)
		}
	}
}
