package maps

import (
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/kernatomic"
)

// The kernel-atomic path of Entry (see "Kernel atomicity" at Entry): each
// op is one operation of the Entry's kernatomic.Slot, which is either a
// run of the Map's helper program or, on a BPF_F_MMAPABLE array, a
// sync/atomic instruction on the mapped value. Values travel as words: the
// value's 4 or 8 encoded bytes, native order.

func (e *Entry[K, V]) atomicLoad() (V, error) {
	var v V
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

func (e *Entry[K, V]) atomicStore(v V) error {
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

// fetch runs op, the slot's fetching operation f (Swap, Add), with v's
// word and returns the value it replaced.
func (e *Entry[K, V]) fetch(op string, v V, f func(*kernatomic.Slot, uint64) (uint64, bool, error)) (old V, err error) {
	s, err := e.bind(op)
	if err != nil {
		return old, err
	}
	u, err := e.toWord(op, v)
	if err != nil {
		return old, err
	}
	w, _, err := f(s, u)
	if err != nil {
		return old, e.atomicErr(op, err)
	}
	return e.fromWord(op, w)
}

// atomicUpdate is a compare-and-swap loop: f runs on the value last seen
// until the swap succeeds.
func (e *Entry[K, V]) atomicUpdate(op string, f func(V) V) (V, error) {
	var zero V
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

func (e *Entry[K, V]) atomicCompareAndSwap(old, new V) (bool, error) {
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
	h, err := kernatomic.New(m.m)
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
