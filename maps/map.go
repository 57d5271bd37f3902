package maps

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/bpfchan/bpfchan/internal/codec"
	"github.com/cilium/ebpf"
)

// Map is a typed view of a BPF map with one value per key: hash, LRU hash,
// array, LPM trie, and the local storage maps (socket, inode, task and
// cgroup storage, keyed by a file descriptor). Per-CPU maps use PerCPUMap,
// maps of maps MapOfMaps. It owns its file descriptor: Close it. A Map is safe for concurrent use, and Close
// may race with other calls: they complete or return ErrClosed.
//
// Keys and values are encoded by the codec of internal/codec: a type with
// no padding is copied as raw memory, its size checked once when the Map is
// made; other fixed-size types go through encoding/binary; types
// implementing encoding.BinaryMarshaler and BinaryUnmarshaler use those.
type Map[K, V any] struct {
	// The hook for entry code (entry*.go, kernel-atomic Entry): m is the
	// map's descriptor (owned by this Map), name names it in errors (both
	// from the embedded handle), kc and vc encode keys and values, ks and vs
	// are the map's key and value sizes, array and max (from the embedded
	// index) say whether keys are indexes below max. open reports ErrClosed
	// after Close. helper is filled lazily (once) with whatever entry code
	// must close with the map (its helper program); Close closes helper.c
	// after the map, and runs helper.once itself first (setting helper.err
	// to a wrapped ErrClosed), so no helper is built after Close. Kernel
	// calls on m must hold the read side of lf (if !m.lf.acquire() { closed
	// }; defer m.lf.release()), the guard Close waits for.
	handle
	kc     codec.Codec[K]
	vc     codec.Codec[V]
	helper lazyHelper
	index
	ks, vs  int
	direct  bool // both codecs copy memory: cilium's unsafe.Pointer path
	batch   int  // elements per batch syscall; 0 means 1024
	noBatch atomic.Bool
}

// lazyHelper is a resource built on first use by entry code and closed by
// Map.Close after the map itself.
type lazyHelper struct {
	once sync.Once
	c    io.Closer
	err  error
}

// open returns an error wrapping ErrClosed, naming the map, once Close was
// called, and nil before.
func (m *Map[K, V]) open() error {
	if m.lf.closed.Load() {
		return fmt.Errorf("%s: %w", m.name, ErrClosed)
	}
	return nil
}

// NewHash creates a hash map of maxEntries elements, keys K and values V.
func NewHash[K, V any](maxEntries uint32, opts ...MapOption) (*Map[K, V], error) {
	return New[K, V](specOf(ebpf.Hash, maxEntries, opts))
}

// NewLRUHash creates an LRU hash map: when it is full, an insert evicts the
// least recently used element instead of failing.
func NewLRUHash[K, V any](maxEntries uint32, opts ...MapOption) (*Map[K, V], error) {
	return New[K, V](specOf(ebpf.LRUHash, maxEntries, opts))
}

// NewArray creates an array of maxEntries values, indexed from 0. Every
// index exists (zero at first); an index not below maxEntries is an
// ErrOutOfRange error, and elements cannot be deleted.
func NewArray[V any](maxEntries uint32, opts ...MapOption) (*Map[uint32, V], error) {
	return New[uint32, V](specOf(ebpf.Array, maxEntries, opts))
}

// New creates a map from spec and wraps it. A KeySize or ValueSize of zero
// is filled in from K and V; a given size must match theirs. The spec is not
// modified. spec.Name names the map, and is checked as WithName's is. Per-CPU types, maps of maps, queues, stacks, bloom filters and
// ring buffers have their own constructors and are refused here with
// ErrMapType, as are the maps of kernel objects (program arrays, device,
// CPU, socket and cgroup arrays, stack traces).
func New[K, V any](spec *ebpf.MapSpec) (*Map[K, V], error) {
	em, err := createKV[K, V](spec, false)
	if err != nil {
		return nil, err
	}
	return adopt[K, V](em)
}

// Open wraps a clone of m (the caller keeps and closes its own m), after
// checking that K and V have m's key and value sizes.
func Open[K, V any](m *ebpf.Map) (*Map[K, V], error) {
	return openClone(m, adopt[K, V])
}

// adopt wraps em, which the new Map owns: em is closed on error.
func adopt[K, V any](em *ebpf.Map) (*Map[K, V], error) {
	kc, vc, err := codecs[K, V]()
	m := &Map[K, V]{kc: kc, vc: vc}
	if err := m.own(em, err, kvType(em.Type(), false), kc.Check("key", em.KeySize()), vc.Check("value", em.ValueSize())); err != nil {
		return nil, err
	}
	m.index, m.ks, m.vs = indexOf(em), int(em.KeySize()), int(em.ValueSize())
	m.direct = kc.Direct() && vc.Direct()
	return m, nil
}

// Lookup returns the value of k; errors.Is(err, ErrKeyNotExist) when k is
// absent.
func (m *Map[K, V]) Lookup(k K) (V, error) {
	var v V
	kp, err := m.key("lookup", &k)
	if err != nil {
		return v, err
	}
	if m.direct {
		err := m.do("lookup", func() error { return m.m.Lookup(kp, unsafe.Pointer(&v)) })
		return v, err
	}
	buf := make([]byte, m.vs)
	if err := m.do("lookup", func() error { return m.m.Lookup(kp, ptr(buf)) }); err != nil {
		return v, err
	}
	err = m.fail("lookup", m.vc.Decode(buf, &v))
	return v, err
}

// Put creates or replaces the value of k. A full hash map is ErrFull.
func (m *Map[K, V]) Put(k K, v V) error { return m.update("put", k, v, ebpf.UpdateAny) }

// Insert creates k with value v; ErrKeyExist when k is present (always, for
// an array).
func (m *Map[K, V]) Insert(k K, v V) error { return m.update("insert", k, v, ebpf.UpdateNoExist) }

// Replace changes the value of k; ErrKeyNotExist when k is absent.
func (m *Map[K, V]) Replace(k K, v V) error { return m.update("replace", k, v, ebpf.UpdateExist) }

func (m *Map[K, V]) update(op string, k K, v V, flags ebpf.MapUpdateFlags) error {
	kp, err := m.key(op, &k)
	if err != nil {
		return err
	}
	vp, err := encodePtr(m.vc, &v, m.vs)
	if err != nil {
		return opErr(op, m.name, err)
	}
	return m.do(op, func() error { return m.m.Update(kp, vp, flags) })
}

// Delete removes k; ErrKeyNotExist when k is absent. Array elements cannot
// be deleted (the kernel refuses): Put a zero value instead.
func (m *Map[K, V]) Delete(k K) error {
	kp, err := m.key("delete", &k)
	if err != nil {
		return err
	}
	if err := noDelete("delete", m.name, m.m.Type()); err != nil {
		return err
	}
	return m.do("delete", func() error { return m.m.Delete(kp) })
}

// key encodes k for a kernel call and checks an array index.
func (m *Map[K, V]) key(op string, k *K) (unsafe.Pointer, error) {
	kp, err := encodePtr(m.kc, k, m.ks)
	if err != nil {
		return nil, opErr(op, m.name, err)
	}
	if err := m.checkIndex(op, m.name, kp); err != nil {
		return nil, err
	}
	return kp, nil
}

// encodePtr is the address of v's bytes for a kernel call: v itself when c
// copies memory, else a fresh encoding of size bytes.
func encodePtr[T any](c codec.Codec[T], v *T, size int) (unsafe.Pointer, error) {
	if c.Direct() {
		return unsafe.Pointer(v), nil
	}
	b, err := c.EncodeSized(nil, v, size)
	if err != nil {
		return nil, err
	}
	return ptr(b), nil
}

// Close closes the map (and any helper the map's entries started). Later
// calls on m return ErrClosed; Close itself may be called more than once.
func (m *Map[K, V]) Close() error {
	if m == nil {
		return nil
	}
	first, err := m.close()
	if !first {
		return nil
	}
	m.helper.once.Do(func() { m.helper.err = m.open() })
	if m.helper.c != nil {
		err = joinLine(err, m.helper.c.Close())
	}
	return err
}

// table is m's byte-level view for batches and iteration.
func (m *Map[K, V]) table() *table {
	return &table{handle: &m.handle, index: m.index, ks: m.ks, vs: m.vs, per: 1, batch: m.batch, noBatch: &m.noBatch}
}

func putIndex(b []byte, i uint32) { binary.NativeEndian.PutUint32(b, i) }
