package maps

import (
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
	handle
	kc codec.Codec[K]
	vc codec.Codec[V]
	index
	ks, vs  int // vs: the size of one CPU's value
	cpus    int
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
func NewPerCPUHash[K, V any](maxEntries uint32, opts ...MapOption) (*PerCPUMap[K, V], error) {
	return NewPerCPU[K, V](specOf(ebpf.PerCPUHash, maxEntries, opts))
}

// NewPerCPUArray creates a per-CPU array.
func NewPerCPUArray[V any](maxEntries uint32, opts ...MapOption) (*PerCPUMap[uint32, V], error) {
	return NewPerCPU[uint32, V](specOf(ebpf.PerCPUArray, maxEntries, opts))
}

// NewLRUPerCPUHash creates an LRU per-CPU hash map.
func NewLRUPerCPUHash[K, V any](maxEntries uint32, opts ...MapOption) (*PerCPUMap[K, V], error) {
	return NewPerCPU[K, V](specOf(ebpf.LRUCPUHash, maxEntries, opts))
}

// NewPerCPU creates a per-CPU map from spec, filling in or checking the key
// and value sizes and checking the name as New does (the value size is that
// of one CPU's V).
func NewPerCPU[K, V any](spec *ebpf.MapSpec) (*PerCPUMap[K, V], error) {
	em, err := createKV[K, V](spec, true)
	if err != nil {
		return nil, err
	}
	return adoptPerCPU[K, V](em)
}

// OpenPerCPU wraps a clone of m, a per-CPU map, checking the sizes.
func OpenPerCPU[K, V any](m *ebpf.Map) (*PerCPUMap[K, V], error) {
	return openClone(m, adoptPerCPU[K, V])
}

// adoptPerCPU wraps em, which the new PerCPUMap owns: em is closed on error.
func adoptPerCPU[K, V any](em *ebpf.Map) (*PerCPUMap[K, V], error) {
	kc, vc, err := codecs[K, V]()
	cpus, cerr := ebpf.PossibleCPU()
	m := &PerCPUMap[K, V]{kc: kc, vc: vc, cpus: cpus}
	if err := m.own(em, err, kvType(em.Type(), true), kc.Check("key", em.KeySize()), vc.Check("value", em.ValueSize()), cerr); err != nil {
		return nil, err
	}
	m.index, m.ks, m.vs = indexOf(em), int(em.KeySize()), int(em.ValueSize())
	return m, nil
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
	if err := m.do("lookup", func() error { return m.m.Lookup(ptr(kb), out.v) }); err != nil {
		return nil, err
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

// Replace is Put that fails with ErrKeyNotExist when k is absent.
func (m *PerCPUMap[K, V]) Replace(k K, values []V) error {
	return m.update("replace", k, values, ebpf.UpdateExist)
}

func (m *PerCPUMap[K, V]) update(op string, k K, values []V, flags ebpf.MapUpdateFlags) error {
	kb, err := m.key(op, &k)
	if err != nil {
		return err
	}
	in := makeRaw(m.vs, m.cpus)
	if err := m.encode(in.b, values); err != nil {
		return opErr(op, m.name, err)
	}
	return m.do(op, func() error { return m.m.Update(ptr(kb), in.v, flags) })
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
	return m.do("delete", func() error { return m.m.Delete(ptr(kb)) })
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
		*errp = m.fail("iterate", joinLine(err, derr))
	}
}

// Keys is All without the values.
func (m *PerCPUMap[K, V]) Keys(errp *error) iter.Seq[K] {
	if errp == nil {
		panic("maps: Keys needs a non-nil error pointer")
	}
	return func(yield func(K) bool) { *errp = walkKeys(m.table(), m.kc, yield) }
}

// Drain removes every element with batch lookup-and-deletes and returns
// what it removed, as Map.Drain does.
func (m *PerCPUMap[K, V]) Drain() (keys []K, values [][]V, err error) {
	err = m.table().drain(func(kb, vb []byte) error {
		var k K
		if err := m.kc.Decode(kb, &k); err != nil {
			return err
		}
		vals, err := m.decode(vb)
		if err != nil {
			return err
		}
		keys, values = append(keys, k), append(values, vals)
		return nil
	})
	return keys, values, err
}

// Clear deletes every element (an array's are set to zero) and returns how
// many.
func (m *PerCPUMap[K, V]) Clear() (int, error) { return m.table().clearAll() }

// BatchPut creates or replaces len(keys) elements in one syscall, values[i]
// being the per-CPU values of keys[i] (as in Put), and returns how many the
// kernel stored, as Map.BatchPut does.
func (m *PerCPUMap[K, V]) BatchPut(keys []K, values [][]V) (int, error) {
	return batchPut(m.table(), m.kc, keys, values, "values", func(dst []byte, v *[]V) error { return m.encode(dst, *v) })
}

// BatchDelete deletes the keys in one syscall and returns how many it
// deleted, as Map.BatchDelete does.
func (m *PerCPUMap[K, V]) BatchDelete(keys []K) (int, error) {
	return batchDelete(m.table(), m.kc, keys)
}

// Close closes the map; later calls return ErrClosed.
func (m *PerCPUMap[K, V]) Close() error {
	if m == nil {
		return nil
	}
	_, err := m.close()
	return err
}

func (m *PerCPUMap[K, V]) table() *table {
	return &table{handle: &m.handle, index: m.index, ks: m.ks, vs: m.vs, per: m.cpus, perCPU: true, batch: m.batch, noBatch: &m.noBatch}
}

// key encodes k and checks an array index.
func (m *PerCPUMap[K, V]) key(op string, k *K) ([]byte, error) {
	return keyBytes(m.kc, &m.index, m.ks, op, m.name, k)
}

// encode writes values, one per CPU, into dst (cpus values of vs bytes,
// zero); fewer values than CPUs leave the rest zero.
func (m *PerCPUMap[K, V]) encode(dst []byte, values []V) error {
	if len(values) > m.cpus {
		return fmt.Errorf("%d values for %d possible CPUs", len(values), m.cpus)
	}
	for i := range values {
		if _, err := m.vc.EncodeSized(dst[i*m.vs:i*m.vs], &values[i], m.vs); err != nil {
			return fmt.Errorf("cpu %d: %w", i, err)
		}
	}
	return nil
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
