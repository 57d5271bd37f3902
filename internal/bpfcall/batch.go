package bpfcall

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ENOTSUPP is the kernel-internal "operation not supported" (524) that
// bpf(2) returns, for instance for batch operations on map types without
// them (queues, stacks). It is not ENOTSUP/EOPNOTSUPP (95).
const ENOTSUPP = unix.Errno(524)

// LookupBatch reads up to count entries into keys and values
// (BPF_MAP_LOOKUP_BATCH), starting after the position in in (nil: from the
// first entry) and leaving the next position in out; in and out may be the
// same buffer, of at least the map's key size (4 bytes for a hash map with
// smaller keys). keys and values must hold count entries. elemFlags is 0 or
// BPF_F_LOCK.
//
// It returns the number of entries read, which is valid with ENOENT too:
// ENOENT means the sweep reached the end of the map, with the last entries
// in this batch. ENOSPC with 0 entries: a hash bucket holds more entries
// than count. ENOTSUPP, EINVAL or EOPNOTSUPP at the first call: the kernel
// or map type has no batch lookup. With any error but ENOENT and ENOSPC the
// count is 0 (a kernel that refuses the call leaves the attribute's count
// as it was given).
func LookupBatch(fd int, in, out, keys, values []byte, count uint32, elemFlags uint64) (uint32, unix.Errno) {
	pin, pout, pk, pv := ptr(in), ptr(out), ptr(keys), ptr(values)
	attr := batchAttr{
		inBatch:   uint64(uintptr(pin)),
		outBatch:  uint64(uintptr(pout)),
		keys:      uint64(uintptr(pk)),
		values:    uint64(uintptr(pv)),
		count:     count,
		mapFD:     uint32(fd),
		elemFlags: elemFlags,
	}
	_, _, e := unix.Syscall(unix.SYS_BPF, unix.BPF_MAP_LOOKUP_BATCH, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(pin)
	runtime.KeepAlive(pout)
	runtime.KeepAlive(pk)
	runtime.KeepAlive(pv)
	if e != 0 && e != unix.ENOENT && e != unix.ENOSPC {
		return 0, e
	}
	return attr.count, e
}
