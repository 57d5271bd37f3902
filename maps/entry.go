package maps

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/bpfchan/bpfchan/internal/kernatomic"
)

// Entry is one key of a Map used like an atom: Load, Store, Swap,
// Update(f), CompareAndSwap, and the integer Add. Make one with Map.Entry.
// An Entry is safe for concurrent use; it holds no resources of its own.
//
// # Kernel atomicity
//
// Atomic reports true for a hash, LRU hash or array map whose values are 4
// or 8 bytes and whose keys are at most 504 bytes, unless the map was
// created with BPF_F_RDONLY_PROG (no program may write it, so no helper
// either). Then each op is atomic against BPF programs that update the same
// value with atomic instructions (__sync_fetch_and_add, BPF_XCHG,
// BPF_CMPXCHG) and against other Entries, goroutines and processes doing the
// same:
//
//   - on an array created with BPF_F_MMAPABLE, the ops are sync/atomic
//     instructions on the map's memory mapped into this process (no syscall
//     at all): the same locked instructions a BPF program's atomics use;
//   - otherwise each op is one run of a small helper program
//     (BPF_PROG_TYPE_SYSCALL, through BPF_PROG_TEST_RUN) that looks the key
//     up and applies one instruction to the value in place: a load (Load),
//     BPF_XCHG (Store, Swap), BPF_CMPXCHG (CompareAndSwap) or a fetching
//     BPF_ADD (Add). The program is loaded on the first Entry op that needs
//     it, once per Map, and unloaded by Map.Close.
//
// Update(f) is a compare-and-swap loop of those ops: a Load, then
// CompareAndSwap until it succeeds, so f may run more than once, on values
// that were current when it ran. Add is a loop too when it must check or
// decode the sum (see Add). Store is an exchange rather than a map update:
// updating a hash element replaces it, and a BPF program adding into the old
// element at that moment would lose its add. Load is a single-copy atomic
// read.
//
// Writes the ops cannot protect against: a plain map update of the same key
// (Map.Put, bpf_map_update_elem) replaces the value whatever was there, and a
// BPF program doing a non-atomic read-modify-write (`*v += 1` without
// __sync_fetch_and_add) can overwrite an Entry's change. Nor can they
// protect against the key being deleted: the helper looks the key up, then
// operates on the element it found, and it is a sleepable program that can
// be preempted in between. If the key is deleted (or, in an LRU map,
// evicted) at that moment, the op lands on an element that is no longer in
// the map, and on a hash or LRU map with preallocated elements (the default)
// that element may already be reused for another key, whose value the op
// then changes. Do not delete keys that Entries update.
//
// A map created with BPF_F_RDONLY (read-only to userspace) or BPF_F_WRONLY
// (write-only) refuses what the map syscalls would refuse, with an error
// wrapping EPERM: on a read-only map every op but Load, on a write-only map
// every op but Store (the others return the value). Mapping an mmapable
// array writable makes BPF_MAP_FREEZE of it fail until Map.Close.
//
// An op racing Map.Close completes or reports ErrClosed. On the mmap path,
// an op that reports ErrClosed may still have reached the map (it ran as the
// mapping was being dropped); one that reports success did.
//
// # The userspace fallback
//
// For any other map, Atomic reports false and the read-modify-writes (Swap,
// Update, CompareAndSwap, Add) are a compare-and-swap from userspace: read
// the value, compute the new one (f and the validator run here, with no
// lock held, so they may use other Entries), then, holding a lock striped by
// key that the Entries of the same Map in this process share, read the
// value again and write only if its bytes are unchanged, else start over. A
// missing key is created with BPF_NOEXIST, so a concurrent creator is never
// clobbered (another wrapper's or a BPF program's): the op starts over from
// the creator's value. Entries of the same Map therefore never lose each
// other's updates. What can be lost is any other write between that second
// read and the write: a BPF program's update, another process's, a Map.Put,
// an Entry of another wrapper of the same kernel map; Swap then also returns
// a value older than the one it replaced. On a hash map the write replaces
// the element, so an atomic add a BPF program makes into the old element at
// that moment is lost too. Store is a plain update under the same lock.
//
// # Missing keys and validators
//
// On a missing key, Load and CompareAndSwap report ErrKeyNotExist; Swap,
// Update and Add start from the zero value and create the key, never
// clobbering a concurrent creator (the key is created with BPF_NOEXIST, and
// when someone else created it first the op applies to their value). Store
// creates the key too. Array keys always exist; an index out of range is
// ErrOutOfRange.
//
// A validator (WithValidator) checks every value about to be written: by
// Store, Swap, Update (f's result) and CompareAndSwap (new, once the compare
// has succeeded), and Add (the sum). A rejected value returns ErrInvalid
// wrapping the validator's error and leaves the map unchanged. The validator
// may also be called on a value that is then not written (an Update retry, a
// CompareAndSwap that finds another value): keep it free of side effects.
type Entry[K, V any] struct {
	m        *Map[K, V]
	k        K
	key      []byte // k encoded
	err      error  // from encoding the key: every op returns it
	validate func(V) error
	atomic   bool
	direct   bool        // V is copied as memory (vc.Direct)
	stripe   *sync.Mutex // the fallback's lock for this key

	slot atomic.Pointer[kernatomic.Slot] // set once bound
}

// EntryOption configures an Entry.
type EntryOption func(*entryConfig)

type entryConfig struct {
	validator any // func(V) error for the Entry's V
	userspace bool
}

// WithValidator makes the Entry check every value it is about to write with
// f. A rejected value is not written; the op returns ErrInvalid wrapping f's
// error. V must be the Entry's value type (Map.Entry panics otherwise).
func WithValidator[V any](f func(V) error) EntryOption {
	return func(c *entryConfig) { c.validator = f }
}

// userspace forces the fallback path, for tests and benchmarks that compare
// it with the kernel-atomic one.
func userspace() EntryOption {
	return func(c *entryConfig) { c.userspace = true }
}

// Entry returns the entry of key k. Nothing is read or loaded yet; an error
// in encoding k is returned by every op of the Entry.
func (m *Map[K, V]) Entry(k K, opts ...EntryOption) *Entry[K, V] {
	var c entryConfig
	for _, o := range opts {
		o(&c)
	}
	e := &Entry[K, V]{m: m, k: k, direct: m.vc.Direct()}
	if c.validator != nil {
		f, ok := c.validator.(func(V) error)
		if !ok {
			panic(fmt.Sprintf("maps: WithValidator for %s used on an Entry of %s values",
				reflect.TypeOf(c.validator).In(0), reflect.TypeFor[V]()))
		}
		e.validate = f
	}
	e.key, e.err = m.kc.EncodeSized(nil, &k, m.ks)
	if e.err == nil && m.array && binary.NativeEndian.Uint32(e.key) >= m.max {
		e.err = fmt.Errorf("index %d not below %d: %w", binary.NativeEndian.Uint32(e.key), m.max, ErrOutOfRange)
	}
	e.atomic = !c.userspace && kernatomic.Supported(m.m) == nil
	if !e.atomic {
		e.stripe = &stripes[stripeOf(m, e.key)]
	}
	return e
}

// Atomic reports whether the Entry's ops are kernel-atomic (see Entry). It
// depends only on the map's type, key and value sizes and flags. When it is
// true and the helper cannot be set up, ops fail with that error: an atomic
// Entry never falls back silently.
func (e *Entry[K, V]) Atomic() bool { return e.atomic }

// Load returns the value; ErrKeyNotExist when the key is absent.
func (e *Entry[K, V]) Load() (V, error) {
	if e.atomic {
		return e.atomicLoad()
	}
	return e.fallbackLoad()
}

// Store sets the value, creating the key when it is missing.
func (e *Entry[K, V]) Store(v V) error {
	if err := e.check("store", v); err != nil {
		return err
	}
	if e.atomic {
		return e.atomicStore(v)
	}
	return e.fallbackStore(v)
}

// Swap stores v and returns the value it replaced (zero when the key was
// missing: it is created).
func (e *Entry[K, V]) Swap(v V) (old V, err error) {
	if err := e.check("swap", v); err != nil {
		return old, err
	}
	if e.atomic {
		return e.fetch("swap", v, (*kernatomic.Slot).Swap)
	}
	return e.userspaceRMW("swap", func(V, bool) (V, bool) { return v, true })
}

// Update replaces the value with f(value) and returns the new value. A
// missing key starts from the zero value and is created. f may be called
// more than once (see Entry).
func (e *Entry[K, V]) Update(f func(V) V) (V, error) { return e.update("update", f) }

// update is Update for op (Update, and Add when it cannot fetch-add).
func (e *Entry[K, V]) update(op string, f func(V) V) (V, error) {
	if e.atomic {
		return e.atomicUpdate(op, f)
	}
	return e.fallbackUpdate(op, f)
}

// CompareAndSwap stores new if the value's bytes equal old's, and reports
// whether it did. A missing key is ErrKeyNotExist.
func (e *Entry[K, V]) CompareAndSwap(old, new V) (bool, error) {
	if e.atomic {
		return e.atomicCompareAndSwap(old, new)
	}
	return e.fallbackCompareAndSwap(old, new)
}

// check runs the validator on v.
func (e *Entry[K, V]) check(op string, v V) error {
	if e.validate == nil {
		return nil
	}
	if err := e.validate(v); err != nil {
		return opErr(op, e.m.name, fmt.Errorf("%w: %w", ErrInvalid, err))
	}
	return nil
}
