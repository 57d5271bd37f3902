package maps

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/cilium/ebpf"

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
	var v V
	if !e.atomic {
		if e.err != nil {
			return v, opErr("load", e.m.name, e.err)
		}
		return e.m.Lookup(e.k)
	}
	s, err := e.bind("load")
	if err != nil {
		return v, err
	}
	u, err := s.Load()
	if err != nil {
		return v, e.atomicErr("load", err)
	}
	return e.fromWord("load", u)
}

// Store sets the value, creating the key when it is missing.
func (e *Entry[K, V]) Store(v V) error {
	if err := e.check("store", v); err != nil {
		return err
	}
	if !e.atomic {
		if e.err != nil {
			return opErr("store", e.m.name, e.err)
		}
		// Under the stripe too: a Store landing inside another Entry's
		// read-modify-write would be overwritten by it.
		e.stripe.Lock()
		defer e.stripe.Unlock()
		return e.m.Put(e.k, v)
	}
	s, err := e.bind("store")
	if err != nil {
		return err
	}
	u, err := e.toWord("store", v)
	if err != nil {
		return err
	}
	if err := s.Store(u); err != nil {
		return e.atomicErr("store", err)
	}
	return nil
}

// Swap stores v and returns the value it replaced (zero when the key was
// missing: it is created).
func (e *Entry[K, V]) Swap(v V) (old V, err error) {
	if err := e.check("swap", v); err != nil {
		return old, err
	}
	if !e.atomic {
		return e.userspaceRMW("swap", func(V, bool) (V, bool) { return v, true })
	}
	s, err := e.bind("swap")
	if err != nil {
		return old, err
	}
	u, err := e.toWord("swap", v)
	if err != nil {
		return old, err
	}
	w, _, err := s.Swap(u)
	if err != nil {
		return old, e.atomicErr("swap", err)
	}
	return e.fromWord("swap", w)
}

// Update replaces the value with f(value) and returns the new value. A
// missing key starts from the zero value and is created. f may be called
// more than once (see Entry).
func (e *Entry[K, V]) Update(f func(V) V) (V, error) { return e.update("update", f) }

func (e *Entry[K, V]) update(op string, f func(V) V) (V, error) {
	var zero V
	if !e.atomic {
		var n V
		var verr error
		_, err := e.userspaceRMW(op, func(cur V, _ bool) (V, bool) {
			n = f(cur)
			verr = e.check(op, n)
			return n, verr == nil
		})
		if err == nil {
			err = verr
		}
		if err != nil {
			return zero, err
		}
		return n, nil
	}
	s, err := e.bind(op)
	if err != nil {
		return zero, err
	}
	cur, err := s.Load()
	if err != nil && !errors.Is(err, kernatomic.ErrKeyNotExist) {
		return zero, e.atomicErr(op, err)
	}
	for {
		v, err := e.fromWord(op, cur)
		if err != nil {
			return zero, err
		}
		n := f(v)
		if err := e.check(op, n); err != nil {
			return zero, err
		}
		u, err := e.toWord(op, n)
		if err != nil {
			return zero, err
		}
		// A key missing (or deleted since the Load) is created from zero
		// and compared with cur: unless cur is zero the compare fails and
		// the loop goes on from the zero it found.
		prev, ok, err := s.CompareAndSwap(cur, u, true)
		if err != nil {
			return zero, e.atomicErr(op, err)
		}
		if ok {
			return n, nil
		}
		cur = prev
	}
}

// CompareAndSwap stores new if the value's bytes equal old's, and reports
// whether it did. A missing key is ErrKeyNotExist.
func (e *Entry[K, V]) CompareAndSwap(old, new V) (bool, error) {
	if !e.atomic {
		var verr error
		var missing bool
		ob, err := e.m.vc.EncodeSized(nil, &old, e.m.vs)
		if err != nil {
			return false, opErr("compare-and-swap", e.m.name, err)
		}
		swapped := false
		_, err = e.userspaceRMW("compare-and-swap", func(cur V, found bool) (V, bool) {
			if !found {
				missing = true
				return cur, false
			}
			cb, err := e.m.vc.EncodeSized(nil, &cur, e.m.vs)
			if err != nil || !bytes.Equal(cb, ob) {
				return cur, false
			}
			if verr = e.check("compare-and-swap", new); verr != nil {
				return cur, false
			}
			swapped = true
			return new, true
		})
		switch {
		case err != nil:
			return false, err
		case verr != nil:
			return false, verr
		case missing:
			return false, opErr("compare-and-swap", e.m.name, ErrKeyNotExist)
		}
		return swapped, nil
	}
	s, err := e.bind("compare-and-swap")
	if err != nil {
		return false, err
	}
	o, err := e.toWord("compare-and-swap", old)
	if err != nil {
		return false, err
	}
	n, err := e.toWord("compare-and-swap", new)
	if err != nil {
		return false, err
	}
	if verr := e.check("compare-and-swap", new); verr != nil {
		// The compare happens in the kernel, so the validator ran first. Its
		// verdict counts only if the compare would succeed: a value that is
		// not old makes this a plain "not swapped".
		cur, err := s.Load()
		if err != nil {
			return false, e.atomicErr("compare-and-swap", err)
		}
		if cur != o {
			return false, nil
		}
		return false, verr
	}
	_, ok, err := s.CompareAndSwap(o, n, false)
	if err != nil {
		return false, e.atomicErr("compare-and-swap", err)
	}
	return ok, nil
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

// bind returns the Entry's slot in the Map's helper, setting both up on
// first use. A failure is not kept here: the helper keeps the final ones
// (see atomicHelper), the next op retries the others.
func (e *Entry[K, V]) bind(op string) (*kernatomic.Slot, error) {
	if s := e.slot.Load(); s != nil {
		return s, nil
	}
	if e.err != nil {
		return nil, opErr(op, e.m.name, e.err)
	}
	h, err := e.m.atomicHelper()
	if err != nil {
		return nil, e.atomicErr(op, err)
	}
	s, err := h.Key(e.key)
	if err != nil {
		return nil, e.atomicErr(op, err)
	}
	e.slot.CompareAndSwap(nil, s)
	return e.slot.Load(), nil
}

// atomicHolder is what a Map's helper hook holds for its Entries: the
// kernatomic Helper, built on first use and closed by Map.Close. A failure
// to build it is kept only when it is final: the map's type, sizes or flags
// do not allow it (ErrUnsupported), the verifier rejected the program, or
// the Map is closed. Any other (a descriptor or memory limit, say) is
// returned to the op that met it, and the next op tries again.
type atomicHolder struct {
	h      atomic.Pointer[kernatomic.Helper]
	mu     sync.Mutex // serialises building and Close
	err    error      // a final failure
	closed bool
}

// Close closes the helper, if built, and makes later builds fail.
func (a *atomicHolder) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	if h := a.h.Load(); h != nil {
		return h.Close()
	}
	return nil
}

// atomicHelper returns the Map's kernatomic helper, made on first use and
// closed by Map.Close.
func (m *Map[K, V]) atomicHelper() (*kernatomic.Helper, error) {
	m.helper.once.Do(func() { m.helper.c = &atomicHolder{} })
	if m.helper.err != nil {
		return nil, m.helper.err // closed before any Entry needed a helper
	}
	a := m.helper.c.(*atomicHolder)
	if h := a.h.Load(); h != nil {
		return h, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch h := a.h.Load(); {
	case h != nil:
		return h, nil
	case a.closed:
		return nil, m.open()
	case a.err != nil:
		return nil, a.err
	}
	if !m.lf.acquire() {
		return nil, m.open()
	}
	h, err := kernatomic.New(m.m, m.name)
	m.lf.release()
	if err != nil {
		if finalLoadErr(err) {
			a.err = err
		}
		return nil, err
	}
	a.h.Store(h)
	return h, nil
}

// finalLoadErr reports whether the helper will never load: the map does not
// allow it, or the verifier rejected the program (EACCES or EINVAL with a
// log). cilium reports every failed load as a VerifierError, EMFILE or
// ENOMEM included: those pass.
func finalLoadErr(err error) bool {
	var ve *ebpf.VerifierError
	return errors.Is(err, kernatomic.ErrUnsupported) ||
		errors.As(err, &ve) && (errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EINVAL))
}

// atomicErr wraps an error of the kernatomic path in this package's terms.
func (e *Entry[K, V]) atomicErr(op string, err error) error {
	switch {
	case errors.Is(err, ErrClosed), errors.Is(err, kernatomic.ErrClosed):
		err = ErrClosed
	case errors.Is(err, kernatomic.ErrKeyNotExist):
		err = ErrKeyNotExist
	case errors.Is(err, kernatomic.ErrFull):
		err = ErrFull
	}
	return opErr(op, e.m.name, err)
}

// toWord converts v to the helper's word: its encoded bytes, native order.
func (e *Entry[K, V]) toWord(op string, v V) (uint64, error) {
	if e.direct {
		return word(unsafe.Slice((*byte)(unsafe.Pointer(&v)), e.m.vs)), nil
	}
	return e.encodeWord(op, v)
}

// encodeWord is toWord through the codec; apart, so that v escapes to the
// heap only here and the direct path allocates nothing.
func (e *Entry[K, V]) encodeWord(op string, v V) (uint64, error) {
	var buf [8]byte
	b, err := e.m.vc.EncodeSized(buf[:0], &v, e.m.vs)
	if err != nil {
		return 0, opErr(op, e.m.name, err)
	}
	return word(b), nil
}

func word(b []byte) uint64 {
	if len(b) == 4 {
		return uint64(binary.NativeEndian.Uint32(b))
	}
	return binary.NativeEndian.Uint64(b)
}

func putWord(b []byte, u uint64) {
	if len(b) == 4 {
		binary.NativeEndian.PutUint32(b, uint32(u))
	} else {
		binary.NativeEndian.PutUint64(b, u)
	}
}

// fromWord converts the helper's word back to a V.
func (e *Entry[K, V]) fromWord(op string, u uint64) (V, error) {
	if e.direct {
		var v V
		putWord(unsafe.Slice((*byte)(unsafe.Pointer(&v)), e.m.vs), u)
		return v, nil
	}
	return e.decodeWord(op, u)
}

func (e *Entry[K, V]) decodeWord(op string, u uint64) (V, error) {
	var v V
	var buf [8]byte
	b := buf[:e.m.vs]
	putWord(b, u)
	if err := e.m.vc.Decode(b, &v); err != nil {
		return v, opErr(op, e.m.name, err)
	}
	return v, nil
}

// userspaceRMW is the fallback read-modify-write, a compare-and-swap from
// userspace: it reads the value (zero and found=false when missing), lets f
// decide the new value and whether to write it, then, under the key's
// stripe, reads again and writes only if the value's bytes are unchanged (a
// missing key is created with BPF_NOEXIST, so a concurrent creator is never
// clobbered); otherwise it starts over. f (and so the validator) runs with
// no lock held: it may use other Entries. It returns the value read.
func (e *Entry[K, V]) userspaceRMW(op string, f func(cur V, found bool) (V, bool)) (V, error) {
	var zero V
	if e.err != nil {
		return zero, opErr(op, e.m.name, e.err)
	}
	cur, now := make([]byte, e.m.vs), make([]byte, e.m.vs)
	for {
		found, err := e.lookupRaw(op, cur)
		if err != nil {
			return zero, err
		}
		var v V
		if found {
			if err := e.m.vc.Decode(cur, &v); err != nil {
				return zero, opErr(op, e.m.name, err)
			}
		}
		n, write := f(v, found)
		if !write {
			return v, nil
		}
		nb, err := e.m.vc.EncodeSized(nil, &n, e.m.vs)
		if err != nil {
			return zero, opErr(op, e.m.name, err)
		}
		if done, err := e.commit(op, found, cur, now, nb); done || err != nil {
			return v, err
		}
	}
}

// commit writes nb when the value still is cur (found) or the key is still
// missing (!found), holding the key's stripe so that no other Entry of the
// Map writes in between. done is false when the value changed: start over.
func (e *Entry[K, V]) commit(op string, found bool, cur, now, nb []byte) (done bool, err error) {
	e.stripe.Lock()
	defer e.stripe.Unlock()
	still, err := e.lookupRaw(op, now)
	if err != nil || still != found || (found && !bytes.Equal(now, cur)) {
		return false, err
	}
	flags := ebpf.UpdateExist
	if !found {
		flags = ebpf.UpdateNoExist
	}
	err = e.m.do(op, func() error { return e.m.m.Update(ptr(e.key), ptr(nb), flags) })
	switch {
	case err == nil:
		return true, nil
	case found && errors.Is(err, ErrKeyNotExist), !found && errors.Is(err, ErrKeyExist):
		// Deleted, or created, by another writer since the read.
		return false, nil
	}
	return false, err
}

// lookupRaw reads the value's bytes into b; found is false when the key is
// missing.
func (e *Entry[K, V]) lookupRaw(op string, b []byte) (found bool, err error) {
	err = e.m.do(op, func() error { return e.m.m.Lookup(ptr(e.key), ptr(b)) })
	if errors.Is(err, ErrKeyNotExist) {
		return false, nil
	}
	return err == nil, err
}

// stripes serialise the fallback's read-modify-writes on the same key of the
// same Map within this process.
var (
	stripes    [64]sync.Mutex
	stripeSeed = maphash.MakeSeed()
)

func stripeOf[K, V any](m *Map[K, V], key []byte) int {
	var h maphash.Hash
	h.SetSeed(stripeSeed)
	var p [8]byte
	binary.NativeEndian.PutUint64(p[:], uint64(uintptr(unsafe.Pointer(m))))
	h.Write(p[:])
	h.Write(key)
	return int(h.Sum64() % uint64(len(stripes)))
}
