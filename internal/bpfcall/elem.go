package bpfcall

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Lookup copies the value of key into value (BPF_MAP_LOOKUP_ELEM). flags is
// 0 or BPF_F_LOCK. ENOENT: the key is absent.
func Lookup(fd int, key, value []byte, flags uint64) unix.Errno {
	return elem(unix.BPF_MAP_LOOKUP_ELEM, fd, key, value, flags)
}

// Peek copies the front of a queue, or the top of a stack, into value
// without removing it (BPF_MAP_LOOKUP_ELEM with a NULL key). ENOENT: the
// map is empty.
func Peek(fd int, value []byte) unix.Errno {
	return elem(unix.BPF_MAP_LOOKUP_ELEM, fd, nil, value, 0)
}

// Update writes value under key (BPF_MAP_UPDATE_ELEM); for a queue or
// stack, key is nil and the value is pushed. flags is BPF_ANY, BPF_NOEXIST
// or BPF_EXIST, possibly with BPF_F_LOCK. EEXIST, ENOENT: the flags'
// condition failed; E2BIG: the map is full.
func Update(fd int, key, value []byte, flags uint64) unix.Errno {
	return elem(unix.BPF_MAP_UPDATE_ELEM, fd, key, value, flags)
}

// Delete removes key (BPF_MAP_DELETE_ELEM). ENOENT: the key is absent.
func Delete(fd int, key []byte) unix.Errno {
	return elem(unix.BPF_MAP_DELETE_ELEM, fd, key, nil, 0)
}

// NextKey writes the key that follows key into next (BPF_MAP_GET_NEXT_KEY);
// with a nil key, the first key. ENOENT: key was the last one.
func NextKey(fd int, key, next []byte) unix.Errno {
	return elem(unix.BPF_MAP_GET_NEXT_KEY, fd, key, next, 0)
}

// LookupAndDelete copies the value of key into value and removes the entry
// in one step (BPF_MAP_LOOKUP_AND_DELETE_ELEM; hash maps since Linux 5.14).
// flags is 0 or BPF_F_LOCK. ENOENT: the key is absent.
func LookupAndDelete(fd int, key, value []byte, flags uint64) unix.Errno {
	return elem(unix.BPF_MAP_LOOKUP_AND_DELETE_ELEM, fd, key, value, flags)
}

// Pop takes the front of a queue, or the top of a stack, into value
// (BPF_MAP_LOOKUP_AND_DELETE_ELEM with a NULL key). ENOENT: the map is
// empty; EBUSY (Linux 6.15 and later): the map's lock could not be taken,
// nothing was popped.
func Pop(fd int, value []byte) unix.Errno {
	return elem(unix.BPF_MAP_LOOKUP_AND_DELETE_ELEM, fd, nil, value, 0)
}

// PopRaw is Pop through unix.RawSyscall, for a pump whose whole cost is the
// pop: it skips the scheduler's entry and exit bookkeeping around the call
// (BenchmarkPop weighs the two). It is for queue and stack maps only, and
// it is safe there because the call does not wait for anything: the kernel
// pops under the map's spinlock, copies the value out and answers ENOENT
// on an empty map. While it runs the goroutine keeps its P, as a goroutine
// computing would; what can stretch the call is what would stall that
// goroutine touching its own memory (reclaim, a fault on value) and, since
// Linux 6.15, the map's resilient spinlock, which spins up to its timeout
// (a quarter of a second) when the lock's holder is on a vCPU the
// hypervisor descheduled, then answers EBUSY. Meanwhile the P stays taken
// and a stop-the-world (a GC phase) waits for the call to return.
func PopRaw(fd int, value []byte) unix.Errno {
	return elemCall(unix.BPF_MAP_LOOKUP_AND_DELETE_ELEM, fd, nil, value, 0, true)
}

// PeekRaw is Peek through unix.RawSyscall, for the process's waiting
// goroutine that peeks at every idle queue and stack poller's map: there
// the call is the whole cost of an idle poller. It is safe for the reasons
// PopRaw is (the kernel copies the front value out under the map's
// spinlock and waits for nothing).
func PeekRaw(fd int, value []byte) unix.Errno {
	return elemCall(unix.BPF_MAP_LOOKUP_ELEM, fd, nil, value, 0, true)
}

func elem(cmd uintptr, fd int, key, value []byte, flags uint64) unix.Errno {
	return elemCall(cmd, fd, key, value, flags, false)
}

// elemCall makes one element call, through RawSyscall when raw is set. The
// addresses become integers after the last call that could move this
// goroutine's stack (none is left between them and the syscall), so
// buffers on the caller's stack are as safe as buffers on the heap;
// KeepAlive keeps both alive until the kernel has answered.
func elemCall(cmd uintptr, fd int, key, value []byte, flags uint64, raw bool) unix.Errno {
	k, v := ptr(key), ptr(value)
	attr := elemAttr{
		mapFD: uint32(fd),
		key:   uint64(uintptr(k)),
		value: uint64(uintptr(v)),
		flags: flags,
	}
	var e unix.Errno
	if raw {
		_, _, e = unix.RawSyscall(unix.SYS_BPF, cmd, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	} else {
		_, _, e = unix.Syscall(unix.SYS_BPF, cmd, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	}
	runtime.KeepAlive(k)
	runtime.KeepAlive(v)
	return e
}
