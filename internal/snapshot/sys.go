package snapshot

import (
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/bpfcall"
)

// ENOTSUPP is the kernel-internal "operation not supported" that bpf(2)
// returns for map types without batch operations.
const ENOTSUPP = bpfcall.ENOTSUPP

// syscalls makes the Table's and Key's bpf(2) calls through
// internal/bpfcall: cilium/ebpf's Map.BatchLookup allocates a cursor per
// sweep and an error at the end of every sweep, while these calls on
// buffers the Table owns allocate nothing.
type syscalls struct {
	// elemFlags is passed to batch lookups. Always 0, except in tests,
	// which set BPF_F_LOCK to make the kernel refuse a call (EINVAL: the
	// maps have no spin lock).
	elemFlags uint64
}

// lookup reads the value of key into val. It returns unix.ENOENT when the
// key is absent.
func (s *syscalls) lookup(fd int, key, val []byte) error {
	return errOf(bpfcall.Lookup(fd, key, val, 0))
}

// nextKey writes the key after prev (the first key when prev is nil) into
// next. It returns unix.ENOENT after the last key.
func (s *syscalls) nextKey(fd int, prev, next []byte) error {
	return errOf(bpfcall.NextKey(fd, prev, next))
}

// lookupBatch reads up to count entries into keys and vals, continuing
// after the position held in cursor (from the start when first is true) and
// leaving the next position in cursor. It returns the number of entries read
// and unix.ENOENT (with a valid count) when the sweep reached the end.
func (s *syscalls) lookupBatch(fd int, cursor []byte, first bool, keys, vals []byte, count int) (int, error) {
	in := cursor
	if first {
		in = nil
	}
	n, e := bpfcall.LookupBatch(fd, in, cursor, keys, vals, uint32(count), s.elemFlags)
	return int(n), errOf(e)
}

// errOf is e as an error: nil for 0, so that callers compare with ==.
func errOf(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}
