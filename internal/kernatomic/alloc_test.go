//go:build !race

// Under the race detector sync.Pool drops a quarter of what is put back, on
// purpose, so the ops' pooled contexts are allocated again: the allocation
// count is checked without -race.

package kernatomic_test

import (
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// TestOpsDoNotAllocate: once a Slot exists, its ops allocate nothing, on
// the helper-program path (its own BPF_PROG_TEST_RUN call, contexts from a
// pool) and on the mmap path.
func TestOpsDoNotAllocate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags uint32
	}{
		{"program", 0},
		{"mmap", unix.BPF_F_MMAPABLE},
	} {
		m := newMap(t, ebpf.Array, tc.flags, 4, 8, 4)
		s := slot(t, newHelper(t, m), key32(1))
		ops := func() {
			if _, _, err := s.Add(1); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Load(); err != nil {
				t.Fatal(err)
			}
		}
		ops() // fill the pool
		if got := testing.AllocsPerRun(50, ops); got != 0 {
			t.Errorf("%s: got %v allocations per Add and Load, want 0", tc.name, got)
		}
	}
}
