package testenv

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// OnOneCPU runs f on an OS thread pinned to one CPU (the first the test may
// use), so every Program.Run in f writes the same per-CPU buffer: a perf
// test can then reason about one buffer's contents. f must not start
// goroutines that run programs.
func OnOneCPU(tb testing.TB, f func()) {
	tb.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		tb.Fatalf("testenv: get CPU affinity: %v", err)
	}
	for c := 0; c < 1024; c++ {
		if old.IsSet(c) {
			one.Set(c)
			break
		}
	}
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		tb.Fatalf("testenv: pin to one CPU: %v", err)
	}
	defer func() {
		if err := unix.SchedSetaffinity(0, &old); err != nil {
			tb.Errorf("testenv: restore CPU affinity: %v", err)
		}
	}()
	f()
}
