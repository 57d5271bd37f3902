package testenv

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var fixedPast = time.Unix(1, 0)

// BPFFS mounts a private bpffs on a fresh temporary directory and returns
// its path; the mount is removed when tb ends. Pinning tests use it so they
// need no system-wide /sys/fs/bpf mount.
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
