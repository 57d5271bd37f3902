package kernatomic

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/bpfcall"
)

// mmap maps the whole array (elements are 8-byte aligned, so every 4- or
// 8-byte value is naturally aligned for sync/atomic). The mapping is ours,
// not cilium's Map.Memory(): that one exposes no pointer, and its lifetime
// belongs to the ebpf.Map.
func (h *Helper) mmap() error {
	mem, stride, err := bpfcall.MmapArray(h.m.FD(), h.m.MaxEntries(), h.m.ValueSize(), unix.PROT_READ|unix.PROT_WRITE)
	if err != nil {
		return fmt.Errorf("mmap array: %w", err)
	}
	h.mem, h.stride = mem, stride
	return nil
}

// unmap drops the mapping of the map at once, so the kernel can free the
// map, but keeps the address range valid (anonymous memory) until the Helper
// is unreachable: a Slot op racing with Close writes there instead of
// faulting.
func (h *Helper) unmap() error {
	mem := h.mem
	_, err := unix.MmapPtr(-1, 0, unsafe.Pointer(&mem[0]), uintptr(cap(mem)),
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED)
	if err != nil {
		// Could not swap the range out: unmap it for real.
		return bpfcall.MunmapArray(mem)
	}
	runtime.AddCleanup(h, func(b []byte) { _ = bpfcall.MunmapArray(b) }, mem)
	return nil
}

// onMem applies o to the slot's value in the mapped array and returns the
// value before it (for opCmpXchg, the value found: expect when it swapped).
//
// An op racing Close may land in the memory that replaced the map's (see
// unmap): it then reports ErrClosed, meaning the op may or may not have
// reached the map. An op reporting success reached it: Close sets closed
// before it replaces the mapping.
func (s *Slot) onMem(o op, arg, expect uint64) (uint64, error) {
	var old uint64
	if s.h.valueSize == 4 {
		p, a := (*uint32)(s.ptr), uint32(arg)
		switch o {
		case opLoad:
			old = uint64(atomic.LoadUint32(p))
		case opAdd:
			old = uint64(atomic.AddUint32(p, a) - a)
		case opXchg:
			old = uint64(atomic.SwapUint32(p, a))
		default:
			old = uint64(cas(p, uint32(expect), a, atomic.CompareAndSwapUint32, atomic.LoadUint32))
		}
	} else {
		p := (*uint64)(s.ptr)
		switch o {
		case opLoad:
			old = atomic.LoadUint64(p)
		case opAdd:
			old = atomic.AddUint64(p, arg) - arg
		case opXchg:
			old = atomic.SwapUint64(p, arg)
		default:
			old = cas(p, expect, arg, atomic.CompareAndSwapUint64, atomic.LoadUint64)
		}
	}
	closed := s.h.closed.Load()
	runtime.KeepAlive(s) // the Helper's cleanup unmaps s.ptr
	if closed {
		return 0, fmt.Errorf("closed during the op, which may not have reached the map: %w", ErrClosed)
	}
	return old, nil
}

// cas swaps in new when *p is old and returns the value it found (old when
// it swapped). When the compare fails it reports the value that made it
// fail; if that changed back to old meanwhile, it tries again rather than
// report a bogus miss.
func cas[T uint32 | uint64](p *T, old, new T, swap func(*T, T, T) bool, load func(*T) T) T {
	for {
		if swap(p, old, new) {
			return old
		}
		if cur := load(p); cur != old {
			return cur
		}
	}
}
