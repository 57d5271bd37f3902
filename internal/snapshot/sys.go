package snapshot

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The bpf(2) commands used here. cilium/ebpf's Map.BatchLookup allocates a
// cursor per sweep and an error at the end of every sweep; these direct
// calls on buffers the Table owns allocate nothing.
const (
	cmdLookupElem  = 1
	cmdGetNextKey  = 4
	cmdLookupBatch = 24
)

// elemAttr is the kernel's attribute for BPF_MAP_*_ELEM and GET_NEXT_KEY.
type elemAttr struct {
	mapFD uint32
	_     uint32
	key   pointer
	value pointer // or next_key
	flags uint64
}

// batchAttr is the kernel's attribute for BPF_MAP_*_BATCH.
type batchAttr struct {
	inBatch   pointer
	outBatch  pointer
	keys      pointer
	values    pointer
	count     uint32
	mapFD     uint32
	elemFlags uint64
	flags     uint64
}

// ENOTSUPP is the kernel-internal "operation not supported" that bpf(2)
// returns for map types without batch operations.
const ENOTSUPP = unix.Errno(524)

// A pointer is exactly the kernel's 8 bytes (compile-time checks).
var (
	_ [8 - unsafe.Sizeof(pointer{})]byte
	_ [unsafe.Sizeof(pointer{}) - 8]byte
)

// ptr points at b's first byte (nil when b is empty). The attributes hold
// the buffers as unsafe.Pointer, so the garbage collector sees them, keeps
// them alive and never has to guess which integers are addresses.
func ptr(b []byte) pointer {
	if len(b) == 0 {
		return pointer{}
	}
	return pointer{p: unsafe.Pointer(&b[0])}
}

func bpf(cmd uintptr, attr unsafe.Pointer, size uintptr) error {
	_, _, errno := unix.Syscall(unix.SYS_BPF, cmd, uintptr(attr), size)
	if errno != 0 {
		return errno
	}
	return nil
}

// syscalls holds the attributes in memory that outlives each call, so that
// no call allocates.
type syscalls struct {
	elem  elemAttr
	batch batchAttr
	// elemFlags is passed to batch lookups. Always 0, except in tests,
	// which set BPF_F_LOCK to make the kernel refuse a call (EINVAL: the
	// maps have no spin lock).
	elemFlags uint64
}

// lookup reads the value of key into val. It returns unix.ENOENT when the
// key is absent.
func (s *syscalls) lookup(fd int, key, val []byte) error {
	s.elem = elemAttr{mapFD: uint32(fd), key: ptr(key), value: ptr(val)}
	return bpf(cmdLookupElem, unsafe.Pointer(&s.elem), unsafe.Sizeof(s.elem))
}

// nextKey writes the key after prev (the first key when prev is nil) into
// next. It returns unix.ENOENT after the last key.
func (s *syscalls) nextKey(fd int, prev, next []byte) error {
	s.elem = elemAttr{mapFD: uint32(fd), key: ptr(prev), value: ptr(next)}
	return bpf(cmdGetNextKey, unsafe.Pointer(&s.elem), unsafe.Sizeof(s.elem))
}

// lookupBatch reads up to count entries into keys and vals, continuing
// after the position held in cursor (from the start when first is true) and
// leaving the next position in cursor. It returns the number of entries read
// and unix.ENOENT (with a valid count) when the sweep reached the end.
func (s *syscalls) lookupBatch(fd int, cursor []byte, first bool, keys, vals []byte, count int) (int, error) {
	s.batch = batchAttr{
		outBatch:  ptr(cursor),
		keys:      ptr(keys),
		values:    ptr(vals),
		count:     uint32(count),
		mapFD:     uint32(fd),
		elemFlags: s.elemFlags,
	}
	if !first {
		s.batch.inBatch = ptr(cursor)
	}
	err := bpf(cmdLookupBatch, unsafe.Pointer(&s.batch), unsafe.Sizeof(s.batch))
	return int(s.batch.count), err
}
