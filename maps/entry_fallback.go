package maps

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/maphash"
	"sync"
	"unsafe"

	"github.com/cilium/ebpf"
)

// The userspace fallback of Entry (see "The userspace fallback" at Entry):
// map syscalls, with a compare-and-swap from userspace for the
// read-modify-writes, serialised per key by a stripe lock within this
// process.

func (e *Entry[K, V]) fallbackLoad() (V, error) {
	if e.err != nil {
		var zero V
		return zero, opErr("load", e.m.name, e.err)
	}
	return e.m.Lookup(e.k)
}

func (e *Entry[K, V]) fallbackStore(v V) error {
	if e.err != nil {
		return opErr("store", e.m.name, e.err)
	}
	// Under the stripe too: a Store landing inside another Entry's
	// read-modify-write would be overwritten by it.
	e.stripe.Lock()
	defer e.stripe.Unlock()
	return e.m.Put(e.k, v)
}

func (e *Entry[K, V]) fallbackUpdate(op string, f func(V) V) (V, error) {
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
		var zero V
		return zero, err
	}
	return n, nil
}

func (e *Entry[K, V]) fallbackCompareAndSwap(old, new V) (bool, error) {
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
