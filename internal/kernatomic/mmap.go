package kernatomic

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmap maps the whole array (elements are 8-byte aligned, so every 4- or
// 8-byte value is naturally aligned for sync/atomic). The mapping is ours,
// not cilium's Map.Memory(): that one exposes no pointer, and its lifetime
// belongs to the ebpf.Map.
func (h *Helper) mmap() error {
	h.stride = align8(h.valueSize)
	page := os.Getpagesize()
	size := (int(h.m.MaxEntries())*h.stride + page - 1) / page * page
	mem, err := unix.Mmap(h.m.FD(), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap array %s: %w", h.name, err)
	}
	h.mem = mem
	return nil
}

// unmap drops the mapping of the map at once, so the kernel can free the
// map, but keeps the address range valid (anonymous memory) until the Helper
// is unreachable: a Slot op racing with Close writes there instead of
// faulting.
func (h *Helper) unmap() error {
	mem := h.mem
	_, err := unix.MmapPtr(-1, 0, unsafe.Pointer(&mem[0]), uintptr(len(mem)),
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED)
	if err != nil {
		// Could not swap the range out: unmap it for real.
		return unix.Munmap(mem)
	}
	runtime.AddCleanup(h, func(b []byte) { _ = unix.Munmap(b) }, mem)
	return nil
}
