package maps

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/cilium/ebpf"
)

// life guards a wrapper's file descriptor against Close. Every kernel call
// holds the read lock, Close takes the write lock, so an operation racing
// with Close either completes on the live fd or reports ErrClosed; it never
// reaches a closed (or reused) descriptor number.
type life struct {
	mu     sync.RWMutex
	closed atomic.Bool
}

// acquire takes the read lock; on success the caller must call release.
func (l *life) acquire() bool {
	l.mu.RLock()
	if l.closed.Load() {
		l.mu.RUnlock()
		return false
	}
	return true
}

func (l *life) release() { l.mu.RUnlock() }

// shut closes m once; later calls return nil and do nothing.
func (l *life) shut(m *ebpf.Map) (first bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Swap(true) {
		return false, nil
	}
	return true, m.Close()
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

// opErr wraps err as "op name: err".
func opErr(op, name string, err error) error {
	return fmt.Errorf("%s %s: %w", op, name, err)
}

// typeName is the lowercase name of a map type used in error messages.
func typeName(t ebpf.MapType) string {
	switch t {
	case ebpf.Hash:
		return "hash"
	case ebpf.Array:
		return "array"
	case ebpf.PerCPUHash:
		return "per-CPU hash"
	case ebpf.PerCPUArray:
		return "per-CPU array"
	case ebpf.LRUHash:
		return "LRU hash"
	case ebpf.LRUCPUHash:
		return "LRU per-CPU hash"
	case ebpf.LPMTrie:
		return "LPM trie"
	case ebpf.ArrayOfMaps:
		return "array-of-maps"
	case ebpf.HashOfMaps:
		return "hash-of-maps"
	case ebpf.Queue:
		return "queue"
	case ebpf.Stack:
		return "stack"
	case ebpf.RingBuf:
		return "ring buffer"
	case ebpf.BloomFilter:
		return "bloom filter"
	case ebpf.PerfEventArray:
		return "perf event array"
	case ebpf.ProgramArray:
		return "program array"
	case ebpf.CGroupArray:
		return "cgroup array"
	case ebpf.DevMap:
		return "device map"
	case ebpf.CPUMap:
		return "CPU map"
	case ebpf.StackTrace:
		return "stack trace"
	}
	return t.String()
}

// describe names a live map for errors: `hash map "counts"`, or
// `hash map id 12` when it has no name.
func describe(m *ebpf.Map) string {
	kind := typeName(m.Type())
	info, err := m.Info()
	if err != nil {
		return fmt.Sprintf("%s map fd %d", kind, m.FD())
	}
	if info.Name != "" {
		return fmt.Sprintf("%s map %q", kind, info.Name)
	}
	if id, ok := info.ID(); ok {
		return fmt.Sprintf("%s map id %d", kind, id)
	}
	return fmt.Sprintf("%s map fd %d", kind, m.FD())
}

// describeSpec names a map that does not exist yet.
func describeSpec(s *ebpf.MapSpec) string {
	if s.Name != "" {
		return fmt.Sprintf("%s map %q", typeName(s.Type), s.Name)
	}
	return fmt.Sprintf("unnamed %s map", typeName(s.Type))
}

// clone duplicates m for a wrapper that owns its own descriptor.
func clone(m *ebpf.Map) (*ebpf.Map, error) {
	if m == nil {
		return nil, fmt.Errorf("open map: %w", ErrNilMap)
	}
	if m.FD() < 0 {
		return nil, fmt.Errorf("open %s map: %w", typeName(m.Type()), ErrClosed)
	}
	c, err := m.Clone()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", describe(m), err)
	}
	return c, nil
}

// create makes the kernel map for spec; the error names the spec's map.
func create(spec *ebpf.MapSpec) (*ebpf.Map, error) {
	m, err := ebpf.NewMap(spec)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", describeSpec(spec), err)
	}
	return m, nil
}
