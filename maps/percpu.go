package maps

import (
	"errors"
	"fmt"
	"iter"
	"sync/atomic"

	"github.com/bpfchan/bpfchan/internal/codec"
	"github.com/cilium/ebpf"
)

// PerCPUMap is a typed per-CPU hash, per-CPU array or LRU per-CPU hash: each
// key holds one value per possible CPU (ebpf.PossibleCPU, not only the
// online ones), as a []V indexed by CPU number. Sum adds them up. Like Map,
// it owns its descriptor and is safe for concurrent use.
type PerCPUMap[K, V any] struct {
	m      *ebpf.Map
	name   string
	kc     codec.Codec[K]
	vc     codec.Codec[V]
	lf     life
	ks, vs int
	cpus   int
	index
	batch   int
	noBatch atomic.Bool
}

// Number is what Sum adds.
type Number interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 |
		~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uintptr |
		~float32 | ~float64
}

// Sum adds the per-CPU values of one key.
func Sum[V Number](values []V) V {
	var s V
	for _, v := range values {
		s += v
	}
	return s
}

// NewPerCPUHash creates a per-CPU hash map.
func NewPerCPUHash[K, V any](maxEntries uint32) (*PerCPUMap[K, V], error) {
	return NewPerCPU[K, V](&ebpf.MapSpec{Type: ebpf.PerCPUHash, MaxEntries: maxEntries})
}

// NewPerCPUArray creates a per-CPU array.
func NewPerCPUArray[V any](maxEntries uint32) (*PerCPUMap[uint32, V], error) {
	return NewPerCPU[uint32, V](&ebpf.MapSpec{Type: ebpf.PerCPUArray, MaxEntries: maxEntries})
}

// NewLRUPerCPUHash creates an LRU per-CPU hash map.
func NewLRUPerCPUHash[K, V any](maxEntries uint32) (*PerCPUMap[K, V], error) {
	return NewPerCPU[K, V](&ebpf.MapSpec{Type: ebpf.LRUCPUHash, MaxEntries: maxEntries})
}

// NewPerCPU creates a per-CPU map from spec, filling in or checking the key
// and value sizes as New does (the value size is that of one CPU's V).
func NewPerCPU[K, V any](spec *ebpf.MapSpec) (*PerCPUMap[K, V], error) {
	if spec == nil {
		return nil, fmt.Errorf("create map: %w", ErrNilMap)
	}
	kc, vc, err := codecs[K, V]()
	if err == nil {
		err = kvType(spec.Type, true)
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", describeSpec(spec), err)
	}
	s, err := fill(spec, kc, vc)
	if err != nil {
		return nil, err
	}
	em, err := create(s)
	if err != nil {
		return nil, err
	}
	return wrapPerCPU(em, kc, vc)
}

// OpenPerCPU wraps a clone of m, a per-CPU map, checking the sizes.
func OpenPerCPU[K, V any](m *ebpf.Map) (*PerCPUMap[K, V], error) {
	c, err := clone(m)
	if err != nil {
		return nil, err
	}
	kc, vc, err := codecs[K, V]()
	if err == nil {
		err = kvType(c.Type(), true)
	}
	if err != nil {
		err = fmt.Errorf("open %s: %w", describe(c), err)
		c.Close()
		return nil, err
	}
	return wrapPerCPU(c, kc, vc)
}

func wrapPerCPU[K, V any](em *ebpf.Map, kc codec.Codec[K], vc codec.Codec[V]) (*PerCPUMap[K, V], error) {
	name := describe(em)
	err := errors.Join(kc.Check("key", em.KeySize()), vc.Check("value", em.ValueSize()))
	cpus, cerr := ebpf.PossibleCPU()
	if err = errors.Join(err, cerr); err != nil {
		em.Close()
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	return &PerCPUMap[K, V]{
		m: em, name: name, kc: kc, vc: vc,
		ks: int(em.KeySize()), vs: int(em.ValueSize()), cpus: cpus,
		index: indexOf(em),
	}, nil
}

// CPUs is the number of values per key: the number of possible CPUs.
func (m *PerCPUMap[K, V]) CPUs() int { return m.cpus }

// Lookup returns the values of k, one per possible CPU.
func (m *PerCPUMap[K, V]) Lookup(k K) ([]V, error) {
	kb, err := m.key("lookup", &k)
	if err != nil {
		return nil, err
	}
	out := makeRaw(m.vs, m.cpus)
	if !m.lf.acquire() {
		return nil, opErr("lookup", m.name, ErrClosed)
	}
	err = m.m.Lookup(ptr(kb), out.v)
	m.lf.release()
	if err != nil {
		return nil, opErr("lookup", m.name, kernelErr(m.m.Type(), err))
	}
	vals, err := m.decode(out.b)
	if err != nil {
		return nil, opErr("lookup", m.name, err)
	}
	return vals, nil
}

// Put sets the values of k, values[i] on CPU i. Fewer values than CPUs leave
// the other CPUs' values zero; more is an error.
func (m *PerCPUMap[K, V]) Put(k K, values []V) error {
	return m.update("put", k, values, ebpf.UpdateAny)
}

// Insert is Put that fails with ErrKeyExist when k is present.
func (m *PerCPUMap[K, V]) Insert(k K, values []V) error {
	return m.update("insert", k, values, ebpf.UpdateNoExist)
}

func (m *PerCPUMap[K, V]) update(op string, k K, values []V, flags ebpf.MapUpdateFlags) error {
	if len(values) > m.cpus {
		return opErr(op, m.name, fmt.Errorf("%d values for %d possible CPUs", len(values), m.cpus))
	}
	kb, err := m.key(op, &k)
	if err != nil {
		return err
	}
	in := makeRaw(m.vs, m.cpus)
	for i := range values {
		if _, err := m.vc.EncodeSized(in.b[i*m.vs:i*m.vs], &values[i], m.vs); err != nil {
			return opErr(op, m.name, fmt.Errorf("cpu %d: %w", i, err))
		}
	}
	if !m.lf.acquire() {
		return opErr(op, m.name, ErrClosed)
	}
	err = m.m.Update(ptr(kb), in.v, flags)
	m.lf.release()
	if err != nil {
		return opErr(op, m.name, kernelErr(m.m.Type(), err))
	}
	return nil
}

// Delete removes k; ErrKeyNotExist when absent. Arrays cannot delete.
func (m *PerCPUMap[K, V]) Delete(k K) error {
	kb, err := m.key("delete", &k)
	if err != nil {
		return err
	}
	if err := noDelete("delete", m.name, m.m.Type()); err != nil {
		return err
	}
	if !m.lf.acquire() {
		return opErr("delete", m.name, ErrClosed)
	}
	err = m.m.Delete(ptr(kb))
	m.lf.release()
	if err != nil {
		return opErr("delete", m.name, kernelErr(m.m.Type(), err))
	}
	return nil
}

// All iterates over the elements with batch lookups, as Map.All does (same
// error handling and guarantees under change). Each yielded slice is fresh.
func (m *PerCPUMap[K, V]) All(errp *error) iter.Seq2[K, []V] {
	if errp == nil {
		panic("maps: All needs a non-nil error pointer")
	}
	return func(yield func(K, []V) bool) {
		var derr error
		err := m.table().walk(false, func(kb, vb []byte) bool {
			var k K
			if derr = m.kc.Decode(kb, &k); derr != nil {
				return false
			}
			var vals []V
			if vals, derr = m.decode(vb); derr != nil {
				return false
			}
			return yield(k, vals)
		})
		if err = errors.Join(err, derr); err != nil {
			*errp = opErr("iterate", m.name, err)
			return
		}
		*errp = nil
	}
}

// Clear deletes every element (an array's are set to zero) and returns how
// many.
func (m *PerCPUMap[K, V]) Clear() (int, error) {
	n, err := m.table().clear()
	if err != nil {
		return n, opErr("clear", m.name, err)
	}
	return n, nil
}

// Map returns the underlying map, owned by m.
func (m *PerCPUMap[K, V]) Map() *ebpf.Map { return m.m }

// Close closes the map; later calls return ErrClosed.
func (m *PerCPUMap[K, V]) Close() error {
	if m == nil {
		return nil
	}
	_, err := m.lf.shut(m.m)
	return err
}

func (m *PerCPUMap[K, V]) table() *table {
	return &table{m: m.m, name: m.name, lf: &m.lf, ks: m.ks, vs: m.vs, per: m.cpus, perCPU: true, batch: m.batch, noBatch: &m.noBatch}
}

// key encodes k and checks an array index.
func (m *PerCPUMap[K, V]) key(op string, k *K) ([]byte, error) {
	kb, err := m.kc.EncodeSized(nil, k, m.ks)
	if err != nil {
		return nil, opErr(op, m.name, err)
	}
	if err := m.checkIndex(op, m.name, ptr(kb)); err != nil {
		return nil, err
	}
	return kb, nil
}

// decode turns cpus packed values into a []V.
func (m *PerCPUMap[K, V]) decode(b []byte) ([]V, error) {
	vals := make([]V, m.cpus)
	for i := range vals {
		if err := m.vc.Decode(b[i*m.vs:(i+1)*m.vs], &vals[i]); err != nil {
			return nil, fmt.Errorf("cpu %d: %w", i, err)
		}
	}
	return vals, nil
}
