package testenv

import (
	"testing"

	"golang.org/x/sys/unix"
)

// BPFFS mounts a private bpffs on a fresh temporary directory and returns
// its path; the mount is removed when tb ends. Tests that pin a ring use
// it, so they need no system-wide /sys/fs/bpf mount and leave no pin
// behind.
func BPFFS(tb testing.TB) string {
	tb.Helper()
	RequireBPF(tb)
	dir := tb.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, ""); err != nil {
		tb.Fatalf("mount bpffs on %s: %v", dir, err)
	}
	tb.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			tb.Errorf("unmount bpffs %s: %v", dir, err)
		}
	})
	return dir
}
