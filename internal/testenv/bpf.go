package testenv

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// RequireEnv is the environment variable that turns a skip into a failure.
const RequireEnv = "BPFCHAN_REQUIRE_BPF"

var probe struct {
	once sync.Once
	err  error
}

// bpfUnavailable reports why this process cannot create BPF maps and load
// programs, or nil when it can. The answer is computed once.
func bpfUnavailable() error {
	probe.once.Do(func() {
		// Kernels before 5.11 charge maps to RLIMIT_MEMLOCK; an error here
		// matters only if creating a map then fails.
		rlErr := rlimit.RemoveMemlock()
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
		if err != nil {
			if rlErr != nil {
				err = errors.Join(err, fmt.Errorf("remove memlock rlimit: %w", rlErr))
			}
			probe.err = fmt.Errorf("create a BPF map (needs root, or CAP_BPF and CAP_PERFMON): %w", err)
			return
		}
		m.Close()
	})
	return probe.err
}

// RequireBPF skips tb when BPF is not permitted here, saying why; with
// BPFCHAN_REQUIRE_BPF=1 it fails tb instead. It is the only way a bpfchan test
// skips for want of the kernel.
func RequireBPF(tb testing.TB) {
	tb.Helper()
	require(tb, bpfUnavailable())
}

// RequireKernelFaults is RequireBPF for the tests whose BPF program sleeps
// in a page fault that a userfaultfd handles (producer.Gate): besides BPF,
// they need a userfaultfd that may handle the kernel's own faults (root,
// CAP_SYS_PTRACE, or vm.unprivileged_userfaultfd=1; a container's root
// often lacks CAP_SYS_PTRACE).
func RequireKernelFaults(tb testing.TB) {
	tb.Helper()
	require(tb, bpfUnavailable())
	uffdProbe.once.Do(func() {
		fd, _, e := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC, 0, 0)
		if e != 0 {
			uffdProbe.err = fmt.Errorf("userfaultfd for kernel-mode faults (needs root, CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1): %w", e)
			return
		}
		unix.Close(int(fd))
	})
	require(tb, uffdProbe.err)
}

var uffdProbe struct {
	once sync.Once
	err  error
}

// require skips tb when err says what is not permitted, or fails it under
// BPFCHAN_REQUIRE_BPF=1.
func require(tb testing.TB, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatalf("BPF is required (%s=1) but not permitted: %v", RequireEnv, err)
	}
	tb.Skipf("BPF not permitted: %v (set %s=1 to make this a failure)", err, RequireEnv)
}

// IsPermission reports whether err is the kernel refusing for want of privilege.
func IsPermission(err error) bool {
	return errors.Is(err, os.ErrPermission)
}
