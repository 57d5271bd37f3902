package maps

import (
	"fmt"
	"iter"
	"sync/atomic"

	"github.com/bpfchan/bpfchan/internal/codec"
	"github.com/bpfchan/bpfchan/internal/mapref"
	"github.com/cilium/ebpf"
)

// MapOfMaps is a hash-of-maps or array-of-maps: its values are inner maps.
// Put stores a map (the kernel keeps a reference; the caller still closes
// its own *ebpf.Map); Lookup opens the stored map anew, and the caller
// closes what it returns. Like Map, it owns its descriptor and is safe for
// concurrent use.
type MapOfMaps[K any] struct {
	handle
	kc codec.Codec[K]
	index
	ks      int
	noBatch atomic.Bool
}

// NewHashOfMaps creates a hash of at most maxEntries maps like inner.
func NewHashOfMaps[K any](maxEntries uint32, inner *ebpf.MapSpec, opts ...MapOption) (*MapOfMaps[K], error) {
	return newMapOfMaps[K](specOf(ebpf.HashOfMaps, maxEntries, opts), inner)
}

// NewArrayOfMaps creates an array of maxEntries slots for maps like inner.
func NewArrayOfMaps(maxEntries uint32, inner *ebpf.MapSpec, opts ...MapOption) (*MapOfMaps[uint32], error) {
	return newMapOfMaps[uint32](specOf(ebpf.ArrayOfMaps, maxEntries, opts), inner)
}

func newMapOfMaps[K any](spec, inner *ebpf.MapSpec) (*MapOfMaps[K], error) {
	spec.ValueSize, spec.InnerMap = 4, inner
	if inner == nil {
		return nil, fmt.Errorf("create %s: inner map spec: %w", mapref.Spec(spec), ErrNilMap)
	}
	em, err := createFixed[K](spec, &spec.KeySize, "key", "OpenMapOfMaps")
	if err != nil {
		return nil, err
	}
	return adoptMapOfMaps[K](em)
}

// OpenMapOfMaps wraps a clone of m, a hash-of-maps or array-of-maps.
func OpenMapOfMaps[K any](m *ebpf.Map) (*MapOfMaps[K], error) {
	return openClone(m, adoptMapOfMaps[K])
}

// adoptMapOfMaps wraps em, which the new MapOfMaps owns: em is closed on
// error.
func adoptMapOfMaps[K any](em *ebpf.Map) (*MapOfMaps[K], error) {
	kc, err := codec.For[K]()
	if err != nil {
		err = fmt.Errorf("key: %w", err)
	}
	m := &MapOfMaps[K]{kc: kc}
	if err := m.own(em, err, wantType(em.Type(), ebpf.HashOfMaps, ebpf.ArrayOfMaps), kc.Check("key", em.KeySize())); err != nil {
		return nil, err
	}
	m.index, m.ks = indexOf(em), int(em.KeySize())
	return m, nil
}

// Lookup opens the inner map stored at k; the caller closes it.
// ErrKeyNotExist when the slot is empty.
func (m *MapOfMaps[K]) Lookup(k K) (*ebpf.Map, error) {
	kb, err := m.key("lookup", &k)
	if err != nil {
		return nil, err
	}
	var inner *ebpf.Map
	if err := m.do("lookup", func() error { return m.m.Lookup(ptr(kb), &inner) }); err != nil {
		return nil, err
	}
	return inner, nil
}

// Put stores inner at k. The kernel checks that inner is like the inner
// map spec the outer map was made with.
func (m *MapOfMaps[K]) Put(k K, inner *ebpf.Map) error {
	if inner == nil {
		return opErr("put", m.name, fmt.Errorf("inner map: %w", ErrNilMap))
	}
	kb, err := m.key("put", &k)
	if err != nil {
		return err
	}
	return m.do("put", func() error { return m.m.Put(ptr(kb), inner) })
}

// Delete removes the map stored at k; ErrKeyNotExist when there is none.
func (m *MapOfMaps[K]) Delete(k K) error {
	kb, err := m.key("delete", &k)
	if err != nil {
		return err
	}
	return m.do("delete", func() error { return m.m.Delete(ptr(kb)) })
}

// key encodes k and checks an array index.
func (m *MapOfMaps[K]) key(op string, k *K) ([]byte, error) {
	return keyBytes(m.kc, &m.index, m.ks, op, m.name, k)
}

// Keys iterates over the keys that hold a map, as Map.All does (same error
// handling and guarantees under change).
func (m *MapOfMaps[K]) Keys(errp *error) iter.Seq[K] {
	if errp == nil {
		panic("maps: Keys needs a non-nil error pointer")
	}
	return func(yield func(K) bool) {
		t := &table{handle: &m.handle, index: m.index, ks: m.ks, vs: 4, per: 1, noBatch: &m.noBatch}
		*errp = walkKeys(t, m.kc, yield)
	}
}

// Close closes the outer map; inner maps live on while something else
// holds them.
func (m *MapOfMaps[K]) Close() error {
	if m == nil {
		return nil
	}
	_, err := m.close()
	return err
}
