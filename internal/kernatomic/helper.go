package kernatomic

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/bpfasm"
	"github.com/bpfchan/bpfchan/internal/bpfcall"
)

// Errors returned by this package. Callers translate them to their own
// sentinels; match with errors.Is.
var (
	// ErrKeyNotExist: the key is absent and the op does not create it
	// (CompareAndSwap), or an array index is out of range (cilium's sentinel).
	ErrKeyNotExist = ebpf.ErrKeyNotExist
	// ErrFull: creating the key failed because the hash map is full.
	ErrFull = errors.New("map full")
	// ErrClosed: the helper was closed.
	ErrClosed = errors.New("atomic helper closed")
	// ErrUnsupported: the map's type or sizes do not allow kernel-atomic ops.
	ErrUnsupported = errors.New("kernel-atomic ops not supported")
)

// maxRetries bounds the retries of an op whose key was deleted between being
// found (or created) and being operated on. Each retry needs a concurrent
// delete (or LRU eviction) of the very same key to be needed again.
const maxRetries = 64

// Helper performs atomic ops on the 4- or 8-byte values of one map, either
// through a loaded helper program or, for a BPF_F_MMAPABLE array, on the
// shared memory. It is safe for concurrent use. It does not own the map.
type Helper struct {
	m         *ebpf.Map
	prog      *ebpf.Program // nil on the mmap path
	mem       []byte        // the mmapped array on the mmap path
	stride    int           // bytes between array elements in mem
	keySize   int
	valueSize int
	closed    atomic.Bool
	noRead    error // BPF_F_WRONLY: userspace may not read the values
	noWrite   error // BPF_F_RDONLY: userspace may not write them

	// mu keeps the program's fd open while an op runs it: after Close the
	// fd number may name another object.
	mu   sync.RWMutex
	ctxs sync.Pool // *[]byte, contexts of ctxSize(keySize) bytes
}

// Supported reports, without loading anything, whether m's type, sizes and
// flags allow kernel-atomic ops: a hash, LRU hash or array map with 4- or
// 8-byte values and keys of at most 504 bytes, not created with
// BPF_F_RDONLY_PROG (no program, the helper included, may write it).
//
// A map created with BPF_F_RDONLY (read-only to userspace) or BPF_F_WRONLY
// (write-only) is supported, and the Helper enforces the flag as the
// kernel's map syscalls do: the forbidden direction fails with EPERM.
func Supported(m *ebpf.Map) error {
	switch m.Type() {
	case ebpf.Hash, ebpf.LRUHash, ebpf.Array:
	default:
		return fmt.Errorf("map type %s (want hash, LRU hash or array): %w", m.Type(), ErrUnsupported)
	}
	if m.Flags()&unix.BPF_F_RDONLY_PROG != 0 {
		return fmt.Errorf("map read-only to programs (BPF_F_RDONLY_PROG): %w", ErrUnsupported)
	}
	if _, err := bpfasm.AtomicSize(m.ValueSize()); err != nil {
		return fmt.Errorf("%w: %w", err, ErrUnsupported)
	}
	if ks := m.KeySize(); ks < 1 || ks > maxKeySize {
		return fmt.Errorf("key size %d (want 1 to %d): %w", ks, maxKeySize, ErrUnsupported)
	}
	return nil
}

// New prepares atomic ops on m. An array created with BPF_F_MMAPABLE is
// mapped into this process and operated on with sync/atomic (no syscall per
// op); any other supported map gets a helper program (BPF_PROG_TYPE_SYSCALL,
// sleepable) that New loads now. Close releases what New acquired; m stays
// open. Errors do not name m: the caller names it (package maps does, at
// its boundary), so that a message names its map once.
func New(m *ebpf.Map) (*Helper, error) {
	if m == nil {
		panic("kernatomic: nil map")
	}
	if err := Supported(m); err != nil {
		return nil, fmt.Errorf("atomic ops: %w", err)
	}
	h := &Helper{m: m, keySize: int(m.KeySize()), valueSize: int(m.ValueSize())}
	if m.Flags()&unix.BPF_F_WRONLY != 0 {
		h.noRead = fmt.Errorf("write-only to userspace (BPF_F_WRONLY): %w", unix.EPERM)
	}
	if m.Flags()&unix.BPF_F_RDONLY != 0 {
		h.noWrite = fmt.Errorf("read-only to userspace (BPF_F_RDONLY): %w", unix.EPERM)
	}
	if m.Type() == ebpf.Array && m.Flags()&unix.BPF_F_MMAPABLE != 0 {
		if err := h.mmap(); err == nil {
			return h, nil
		}
		// A frozen or read-only-to-userspace array cannot be mapped
		// writable: fall back to the helper program.
	}
	sz, _ := bpfasm.AtomicSize(m.ValueSize()) // checked by Supported
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "bpfchan_atomic",
		Type:         ebpf.Syscall,
		Flags:        unix.BPF_F_SLEEPABLE,
		Instructions: program(m.FD(), h.keySize, sz),
		License:      "Dual MIT/GPL",
	})
	if err != nil {
		return nil, fmt.Errorf("load atomic helper: %w", err)
	}
	h.prog = prog
	return h, nil
}

// Mmap reports whether ops work on the mmapped array (no syscall per op).
func (h *Helper) Mmap() bool { return h.mem != nil }

// Program returns the helper program, or nil on the mmap path.
func (h *Helper) Program() *ebpf.Program { return h.prog }

// Close unloads the helper program or unmaps the array. Ops after Close fail
// with ErrClosed. An op racing with Close either completes on the map or
// fails with ErrClosed; on the mmap path such a failed op may still have
// reached the map (it ran on the memory as Close replaced it). It never
// faults.
func (h *Helper) Close() error {
	if h.closed.Swap(true) {
		return nil
	}
	if h.prog != nil {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.prog.Close()
	}
	return h.unmap()
}

// Key binds a key (its encoded bytes, KeySize long) for ops. For arrays an
// index out of range is ErrKeyNotExist.
func (h *Helper) Key(key []byte) (*Slot, error) {
	if len(key) != h.keySize {
		return nil, fmt.Errorf("key of %d bytes, map has %d", len(key), h.keySize)
	}
	s := &Slot{h: h}
	if h.m.Type() == ebpf.Array {
		idx := binary.NativeEndian.Uint32(key)
		if idx >= h.m.MaxEntries() {
			return nil, fmt.Errorf("index %d out of range (%d entries): %w", idx, h.m.MaxEntries(), ErrKeyNotExist)
		}
		if h.mem != nil {
			s.ptr = unsafe.Pointer(&h.mem[int(idx)*h.stride])
			if h.valueSize == 8 {
				s.w64 = (*uint64)(s.ptr)
			}
			return s, nil
		}
	}
	s.ctx = make([]byte, ctxSize(h.keySize))
	copy(s.ctx[offKey:], key)
	return s, nil
}

// Slot is one key of a Helper's map, bound for ops. It is safe for
// concurrent use. Values travel as uint64 holding the value's bytes in
// native byte order; for 4-byte values only the low 32 bits count.
type Slot struct {
	h   *Helper
	ptr unsafe.Pointer // the value in the mmapped array
	w64 *uint64        // ptr, when the value is 8 bytes
	ctx []byte         // a context template with the key filled in
}

// Mmap reports whether the slot's ops are plain sync/atomic on shared memory.
func (s *Slot) Mmap() bool { return s.ptr != nil }

func (s *Slot) mask() uint64 {
	if s.h.valueSize == 4 {
		return 0xffff_ffff
	}
	return ^uint64(0)
}

// Load reads the value (a single-copy atomic load, in the helper program or
// on the shared memory). A missing key is ErrKeyNotExist.
func (s *Slot) Load() (uint64, error) {
	if s.h.closed.Load() {
		return 0, ErrClosed
	}
	if err := s.h.noRead; err != nil {
		return 0, err
	}
	if s.ptr != nil {
		return s.onMem(opLoad, 0, 0)
	}
	v, _, err := s.run(opLoad, 0, 0)
	return v, err
}

// Store writes v in place (an exchange on the program path, so the element
// is never replaced under a BPF program that holds a pointer to it), creating
// the key from zero first when it is missing.
func (s *Slot) Store(v uint64) error {
	if err := s.h.noWrite; err != nil {
		return err
	}
	_, _, err := s.swap(v)
	return err
}

// Add adds delta to the value and returns the value before the add. A
// missing key is created from zero first (created reports it).
func (s *Slot) Add(delta uint64) (old uint64, created bool, err error) {
	if old, ok := s.AddMmap64(delta); ok {
		return old, false, nil
	}
	if err := s.h.rmw(); err != nil {
		return 0, false, err
	}
	if s.ptr != nil {
		old, err := s.onMem(opAdd, delta, 0)
		return old, false, err
	}
	return s.run(opAdd, delta, 0)
}

// AddMmap64 is Add's fast path, small enough to inline into callers: on an
// open helper's mmapped array of 8-byte values it adds delta and returns the
// old value with ok set. Otherwise the caller must call Add, which reports
// the error: when the helper was closed before, nothing was added; when
// Close ran during the add (ok false after the add), the add may or may not
// have reached the map, and Add reports ErrClosed without adding again.
func (s *Slot) AddMmap64(delta uint64) (old uint64, ok bool) {
	if p := s.w64; p != nil && !s.h.closed.Load() {
		old = atomic.AddUint64(p, delta) - delta
		ok = !s.h.closed.Load()
		runtime.KeepAlive(s) // the Helper's cleanup unmaps *p
		return old, ok
	}
	return 0, false
}

// Swap stores v and returns the value before it. A missing key is created
// from zero first (created reports it; old is then 0).
func (s *Slot) Swap(v uint64) (old uint64, created bool, err error) {
	if err := s.h.rmw(); err != nil {
		return 0, false, err
	}
	return s.swap(v)
}

func (s *Slot) swap(v uint64) (old uint64, created bool, err error) {
	if s.ptr != nil {
		if s.h.closed.Load() {
			return 0, false, ErrClosed
		}
		old, err := s.onMem(opXchg, v, 0)
		return old, false, err
	}
	return s.run(opXchg, v, 0)
}

// CompareAndSwap stores new when the value equals old, and returns the value
// it found either way (prev == old exactly when it swapped). A missing key
// is ErrKeyNotExist, unless create is set: then the key is created from zero
// first (and the compare is against zero).
func (s *Slot) CompareAndSwap(old, new uint64, create bool) (prev uint64, swapped bool, err error) {
	old &= s.mask()
	if err := s.h.rmw(); err != nil {
		return 0, false, err
	}
	if s.ptr != nil {
		prev, err := s.onMem(opCmpXchg, new, old)
		if err != nil {
			return 0, false, err
		}
		return prev, prev == old, nil
	}
	o := opCmpXchg
	if create {
		o = opCmpXchgCreate
	}
	prev, _, err = s.run(o, new, old)
	if err != nil {
		return 0, false, err
	}
	return prev, prev == old, nil
}

// run executes the helper program once per attempt and decodes its answer.
func (s *Slot) run(o op, arg, expect uint64) (old uint64, created bool, err error) {
	h := s.h
	p, _ := h.ctxs.Get().(*[]byte)
	if p == nil {
		b := make([]byte, len(s.ctx))
		p = &b
	}
	defer h.ctxs.Put(p)
	buf := *p
	for range maxRetries {
		copy(buf, s.ctx)
		binary.NativeEndian.PutUint32(buf[offOp:], uint32(o))
		binary.NativeEndian.PutUint64(buf[offArg:], arg)
		binary.NativeEndian.PutUint64(buf[offExpect:], expect)
		h.mu.RLock()
		if h.closed.Load() {
			h.mu.RUnlock()
			return 0, false, ErrClosed
		}
		// Not Program.Run, which serialises the context into fresh
		// buffers (5 allocations) and costs more than the syscall. No
		// EINTR to retry: a syscall program runs once, with no repeat
		// loop that checks for signals.
		ret, e := bpfcall.TestRun(h.prog.FD(), buf)
		h.mu.RUnlock()
		if e != 0 {
			return 0, false, fmt.Errorf("run atomic helper: %w", e)
		}
		old := binary.NativeEndian.Uint64(buf[offOld:])
		switch ret {
		case statusFound, statusCreated:
			return old, ret == statusCreated, nil
		case statusMissing:
			return 0, false, ErrKeyNotExist
		case statusFailed:
			errno := unix.Errno(-int64(old))
			if errno == unix.E2BIG {
				return 0, false, fmt.Errorf("create key: %w", ErrFull)
			}
			return 0, false, fmt.Errorf("create key: %w", errno)
		case statusVanished:
			// The key was deleted between lookup and op: nothing was
			// changed, try again.
		default:
			return 0, false, fmt.Errorf("atomic helper: unexpected status %d", ret)
		}
	}
	return 0, false, fmt.Errorf("key deleted concurrently %d times in a row", maxRetries)
}

// rmw checks that an op that reads and writes the value may run: the
// helper is open and the map's flags allow userspace both.
func (h *Helper) rmw() error {
	switch {
	case h.closed.Load():
		return ErrClosed
	case h.noRead != nil:
		return h.noRead
	case h.noWrite != nil:
		return h.noWrite
	}
	return nil
}
