package maps

import (
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"github.com/cilium/ebpf"
)

// What the map types mean to the wrappers: which wrapper serves which type,
// which types index their keys, and what the kernel's errors mean for each.

// kvType refuses the map types Map (perCPU=false) or PerCPUMap (true) cannot
// serve, pointing to the right wrapper. The error is wrapped with the map's
// name, which says its type.
func kvType(t ebpf.MapType, perCPU bool) error {
	var why string
	switch t {
	case ebpf.PerCPUHash, ebpf.PerCPUArray, ebpf.LRUCPUHash:
		if perCPU {
			return nil
		}
		why = "values are one per CPU: use NewPerCPU or OpenPerCPU"
	case ebpf.Hash, ebpf.Array, ebpf.LRUHash, ebpf.LPMTrie,
		ebpf.SkStorage, ebpf.InodeStorage, ebpf.TaskStorage, ebpf.CgroupStorage, ebpf.CGroupStorage:
		if !perCPU {
			return nil
		}
		why = "one value per key, not per CPU: use New or Open"
	case ebpf.HashOfMaps, ebpf.ArrayOfMaps:
		why = "holds maps: use OpenMapOfMaps"
	case ebpf.Queue:
		why = "no keys: use NewQueue or OpenQueue"
	case ebpf.Stack:
		why = "no keys: use NewStack or OpenStack"
	case ebpf.BloomFilter:
		why = "no keys: use NewBloomFilter or OpenBloomFilter"
	case ebpf.RingBuf, ebpf.PerfEventArray:
		why = "read with package pump"
	case ebpf.UserRingbuf:
		why = "written with package pump"
	case ebpf.ProgramArray, ebpf.CGroupArray, ebpf.DevMap, ebpf.DevMapHash, ebpf.CPUMap,
		ebpf.XSKMap, ebpf.SockMap, ebpf.SockHash, ebpf.ReusePortSockArray, ebpf.StackTrace:
		// Their values are kernel objects (programs, devices, sockets, stack
		// traces) with their own rules: empty slots that cannot be deleted,
		// values written as one thing and read as another.
		why = "holds kernel objects, not typed values: use the *ebpf.Map"
	default:
		why = "no typed keys and values that this package serves"
	}
	return fmt.Errorf("%s: %w", why, ErrMapType)
}

// kernelErr replaces cilium's wording for the sentinels with the sentinel
// itself and translates the kernel's E2BIG, which means "full" for a map of
// type t that holds a bounded number of keys (hash maps, queues, stacks) and
// "index out of range" for an array, and an LPM trie's ENOSPC ("full" too).
// Batch walks do not come here: their ENOSPC means "buffer too small".
func kernelErr(t ebpf.MapType, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrKeyNotExist):
		return ErrKeyNotExist
	case errors.Is(err, ErrKeyExist):
		return ErrKeyExist
	case errors.Is(err, syscall.E2BIG) && isArrayLike(t):
		return ErrOutOfRange
	case errors.Is(err, syscall.E2BIG) && fills(t):
		return ErrFull
	case errors.Is(err, syscall.ENOSPC) && t == ebpf.LPMTrie:
		return ErrFull
	}
	return err
}

// isArrayLike reports whether the keys of a map of type t are indexes below
// MaxEntries, every one of them present.
func isArrayLike(t ebpf.MapType) bool {
	switch t {
	case ebpf.Array, ebpf.PerCPUArray, ebpf.ArrayOfMaps, ebpf.ProgramArray,
		ebpf.PerfEventArray, ebpf.CGroupArray, ebpf.DevMap, ebpf.CPUMap,
		ebpf.XSKMap, ebpf.SockMap, ebpf.ReusePortSockArray:
		return true
	}
	return false
}

// noDelete refuses op on the map name of type t when its elements cannot
// be deleted: arrays of values (the kernel answers EINVAL).
func noDelete(op, name string, t ebpf.MapType) error {
	if t == ebpf.Array || t == ebpf.PerCPUArray {
		return opErr(op, name, fmt.Errorf("array elements cannot be deleted (Put a zero value): %w", errors.ErrUnsupported))
	}
	return nil
}

// fills reports whether the kernel answers E2BIG when a map of type t is
// full: hash maps (of every kind), queues and stacks.
func fills(t ebpf.MapType) bool {
	switch t {
	case ebpf.Hash, ebpf.LRUHash, ebpf.PerCPUHash, ebpf.LRUCPUHash, ebpf.HashOfMaps,
		ebpf.DevMapHash, ebpf.SockHash, ebpf.Queue, ebpf.Stack:
		return true
	}
	return false
}

// index checks array indexes before they reach the kernel, which reports
// one out of range differently per call (ENOENT on lookup, E2BIG on update).
// Wrappers embed it; entry code reads array and max.
type index struct {
	array bool   // the map is array-like with 4-byte keys
	max   uint32 // MaxEntries
}

func indexOf(m *ebpf.Map) index {
	return index{array: isArrayLike(m.Type()) && m.KeySize() == 4, max: m.MaxEntries()}
}

// outOfRange reports whether the key at kp is an index out of range.
func (ix *index) outOfRange(kp unsafe.Pointer) bool { return ix.array && *(*uint32)(kp) >= ix.max }

// rangeErr is the ErrOutOfRange error of the key at kp for op on the map
// name.
func (ix *index) rangeErr(op, name string, kp unsafe.Pointer) error {
	return opErr(op, name, fmt.Errorf("index %d not below %d: %w", *(*uint32)(kp), ix.max, ErrOutOfRange))
}

// checkIndex is outOfRange and rangeErr together.
func (ix *index) checkIndex(op, name string, kp unsafe.Pointer) error {
	if ix.outOfRange(kp) {
		return ix.rangeErr(op, name, kp)
	}
	return nil
}
