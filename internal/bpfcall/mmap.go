package bpfcall

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// MmapArray maps the values of a BPF_F_MMAPABLE array map, shared, with
// prot (unix.PROT_READ, with unix.PROT_WRITE to write). maxEntries and
// valueSize are the map's. The values lie stride bytes apart (the value
// size rounded up to 8, as the kernel lays them out, so every 4- or 8-byte
// value is naturally aligned for sync/atomic). mem holds exactly the
// maxEntries values; its capacity is the whole mapping (whole pages), which
// [MunmapArray] releases. The mapping keeps the kernel map alive until
// then, even after fd is closed.
func MmapArray(fd int, maxEntries, valueSize uint32, prot int) (mem []byte, stride int, err error) {
	st := (uint64(valueSize) + 7) &^ 7
	page := uint64(os.Getpagesize())
	// In 64 bits, checked against int before any conversion: on 32-bit a
	// stride or size past 2 GiB would wrap.
	n := uint64(maxEntries) * st // at most (2^32-1) * 2^32: no overflow
	if st > uint64(maxInt) || n > uint64(maxInt)-page {
		return nil, 0, fmt.Errorf("%d values of %d bytes exceed the address space: %w", maxEntries, st, unix.ENOMEM)
	}
	size := (n + page - 1) / page * page
	mem, err = unix.Mmap(fd, 0, int(size), prot, unix.MAP_SHARED)
	if err != nil {
		return nil, 0, err
	}
	return mem[:n], int(st), nil
}

// MunmapArray releases a mapping made by MmapArray; nil is a no-op.
func MunmapArray(mem []byte) error {
	if mem == nil {
		return nil
	}
	return unix.Munmap(mem[:cap(mem)])
}

const maxInt = int(^uint(0) >> 1)
