package maps

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestAtomicErrNamesMapOnce: an error of the kernel-atomic path that maps
// passes on as it comes (here the EPERM of an op that the map's
// BPF_F_RDONLY or BPF_F_WRONLY forbids) names the map once: kernatomic
// leaves the name to maps.
func TestAtomicErrNamesMapOnce(t *testing.T) {
	for _, k := range entryKinds {
		if !k.atomic {
			continue
		}
		for _, tc := range []struct {
			name  string
			flags uint32
			do    func(e *Entry[uint32, uint64]) error
		}{
			{"swap on rdonly", bpfFRdonly, func(e *Entry[uint32, uint64]) error { _, err := e.Swap(9); return err }},
			{"load on wronly", bpfFWronly, func(e *Entry[uint32, uint64]) error { _, err := e.Load(); return err }},
		} {
			t.Run(k.name+"/"+tc.name, func(t *testing.T) {
				m := newEntryMap[uint64](t, k.typ, k.flags|tc.flags)
				e := m.Entry(1, k.opts...)
				if !e.Atomic() {
					t.Fatal("got a userspace Entry, want the kernel-atomic path")
				}
				err := tc.do(e)
				if !errors.Is(err, unix.EPERM) {
					t.Fatalf("got %v, want EPERM", err)
				}
				if got := strings.Count(err.Error(), m.name); got != 1 {
					t.Errorf("got %q, naming %s %d times; want once", err, m.name, got)
				}
			})
		}
	}
}
