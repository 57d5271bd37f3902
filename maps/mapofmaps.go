package maps

import (
	"errors"
	"fmt"
	"iter"
	"sync/atomic"

	"github.com/bpfchan/bpfchan/internal/codec"
	"github.com/cilium/ebpf"
)

// MapOfMaps is a hash-of-maps or array-of-maps: its values are inner maps.
// Put stores a map (the kernel keeps a reference; the caller still closes
// its own *ebpf.Map); Lookup opens the stored map anew, and the caller
// closes what it returns. Like Map, it owns its descriptor and is safe for
// concurrent use.
type MapOfMaps[K any] struct {
	m    *ebpf.Map
	name string
	kc   codec.Codec[K]
	lf   life
	ks   int
	index
	noBatch atomic.Bool
}

// NewHashOfMaps creates a hash of at most maxEntries maps like inner.
func NewHashOfMaps[K any](maxEntries uint32, inner *ebpf.MapSpec) (*MapOfMaps[K], error) {
	return newMapOfMaps[K](&ebpf.MapSpec{Type: ebpf.HashOfMaps, MaxEntries: maxEntries, ValueSize: 4, InnerMap: inner})
}

// NewArrayOfMaps creates an array of maxEntries slots for maps like inner.
func NewArrayOfMaps(maxEntries uint32, inner *ebpf.MapSpec) (*MapOfMaps[uint32], error) {
	return newMapOfMaps[uint32](&ebpf.MapSpec{Type: ebpf.ArrayOfMaps, MaxEntries: maxEntries, ValueSize: 4, InnerMap: inner})
}

func newMapOfMaps[K any](spec *ebpf.MapSpec) (*MapOfMaps[K], error) {
	if spec.InnerMap == nil {
		return nil, fmt.Errorf("create %s: inner map spec: %w", describeSpec(spec), ErrNilMap)
	}
	kc, err := codec.For[K]()
	if err == nil && kc.Size() < 0 {
		err = fmt.Errorf("key type %s has no fixed size", kc)
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: key: %w", describeSpec(spec), err)
	}
	spec.KeySize = uint32(kc.Size())
	em, err := create(spec)
	if err != nil {
		return nil, err
	}
	return wrapMapOfMaps(em, kc)
}

// OpenMapOfMaps wraps a clone of m, a hash-of-maps or array-of-maps.
func OpenMapOfMaps[K any](m *ebpf.Map) (*MapOfMaps[K], error) {
	c, err := clone(m)
	if err != nil {
		return nil, err
	}
	kc, err := codec.For[K]()
	if err == nil && c.Type() != ebpf.HashOfMaps && c.Type() != ebpf.ArrayOfMaps {
		err = fmt.Errorf("want a hash-of-maps or array-of-maps: %w", ErrMapType)
	}
	if err != nil {
		err = fmt.Errorf("open %s: %w", describe(c), err)
		c.Close()
		return nil, err
	}
	return wrapMapOfMaps(c, kc)
}

func wrapMapOfMaps[K any](em *ebpf.Map, kc codec.Codec[K]) (*MapOfMaps[K], error) {
	name := describe(em)
	if err := kc.Check("key", em.KeySize()); err != nil {
		em.Close()
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	return &MapOfMaps[K]{m: em, name: name, kc: kc, ks: int(em.KeySize()), index: indexOf(em)}, nil
}

// Lookup opens the inner map stored at k; the caller closes it.
// ErrKeyNotExist when the slot is empty.
func (m *MapOfMaps[K]) Lookup(k K) (*ebpf.Map, error) {
	kb, err := m.kc.EncodeSized(nil, &k, m.ks)
	if err != nil {
		return nil, opErr("lookup", m.name, err)
	}
	if err := m.checkIndex("lookup", m.name, ptr(kb)); err != nil {
		return nil, err
	}
	if !m.lf.acquire() {
		return nil, opErr("lookup", m.name, ErrClosed)
	}
	defer m.lf.release()
	var inner *ebpf.Map
	if err := m.m.Lookup(ptr(kb), &inner); err != nil {
		return nil, opErr("lookup", m.name, kernelErr(m.m.Type(), err))
	}
	return inner, nil
}

// Put stores inner at k. The kernel checks that inner is like the inner
// map spec the outer map was made with.
func (m *MapOfMaps[K]) Put(k K, inner *ebpf.Map) error {
	if inner == nil {
		return opErr("put", m.name, fmt.Errorf("inner map: %w", ErrNilMap))
	}
	kb, err := m.kc.EncodeSized(nil, &k, m.ks)
	if err != nil {
		return opErr("put", m.name, err)
	}
	if err := m.checkIndex("put", m.name, ptr(kb)); err != nil {
		return err
	}
	if !m.lf.acquire() {
		return opErr("put", m.name, ErrClosed)
	}
	defer m.lf.release()
	if err := m.m.Put(ptr(kb), inner); err != nil {
		return opErr("put", m.name, kernelErr(m.m.Type(), err))
	}
	return nil
}

// Delete removes the map stored at k; ErrKeyNotExist when there is none.
func (m *MapOfMaps[K]) Delete(k K) error {
	kb, err := m.kc.EncodeSized(nil, &k, m.ks)
	if err != nil {
		return opErr("delete", m.name, err)
	}
	if err := m.checkIndex("delete", m.name, ptr(kb)); err != nil {
		return err
	}
	if !m.lf.acquire() {
		return opErr("delete", m.name, ErrClosed)
	}
	defer m.lf.release()
	if err := m.m.Delete(ptr(kb)); err != nil {
		return opErr("delete", m.name, kernelErr(m.m.Type(), err))
	}
	return nil
}

// Keys iterates over the keys that hold a map, as Map.All does (same error
// handling and guarantees under change).
func (m *MapOfMaps[K]) Keys(errp *error) iter.Seq[K] {
	if errp == nil {
		panic("maps: Keys needs a non-nil error pointer")
	}
	return func(yield func(K) bool) {
		var derr error
		t := &table{m: m.m, name: m.name, lf: &m.lf, ks: m.ks, vs: 4, per: 1, noBatch: &m.noBatch}
		err := t.walk(false, func(kb, _ []byte) bool {
			var k K
			if derr = m.kc.Decode(kb, &k); derr != nil {
				return false
			}
			return yield(k)
		})
		if err = errors.Join(err, derr); err != nil {
			*errp = opErr("iterate", m.name, err)
			return
		}
		*errp = nil
	}
}

// Map returns the underlying map, owned by m.
func (m *MapOfMaps[K]) Map() *ebpf.Map { return m.m }

// Close closes the outer map; inner maps live on while something else
// holds them.
func (m *MapOfMaps[K]) Close() error {
	if m == nil {
		return nil
	}
	_, err := m.lf.shut(m.m)
	return err
}
