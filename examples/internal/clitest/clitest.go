package clitest

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/bpfchan/bpfchan/internal/testenv"
)

// RunFunc is an example program's whole run: it returns the exit code.
type RunFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// Run runs run with ctx and args after [testenv.RequireBPF], fails the test
// at once when the exit code is not 0, and returns what run wrote to stdout.
func Run(ctx context.Context, t *testing.T, run RunFunc, args ...string) string {
	t.Helper()
	testenv.RequireBPF(t)
	var stdout, stderr bytes.Buffer
	if code := run(ctx, args, &stdout, &stderr); code != 0 {
		t.Fatalf("run: exit code %d, want 0; stderr:\n%s\nstdout:\n%s", code, &stderr, &stdout)
	}
	return stdout.String()
}

// Contains reports an error for each of wants that out does not contain.
func Contains(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("stdout does not contain %q:\n%s", want, out)
		}
	}
}

// Cancelled runs run with a context cancelled before it starts (Ctrl-C) and
// checks that it ends gracefully, with figures that reconcile.
func Cancelled(t *testing.T, run RunFunc, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if out := Run(ctx, t, run, args...); !strings.Contains(out, "the figures reconcile") {
		t.Errorf("stdout:\n%s", out)
	}
}

// Usage runs run with each of argss, which must not run the program: the
// exit code must be 2 and stderr must say why.
func Usage(t *testing.T, run RunFunc, argss ...[]string) {
	t.Helper()
	for _, args := range argss {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 2 {
			t.Errorf("run %q: exit code %d, want 2", args, code)
		}
		if stderr.Len() == 0 {
			t.Errorf("run %q: nothing on stderr", args)
		}
	}
}
