package maps

import "iter"

// All returns an iterator over the map's elements, read lazily with batch
// lookups of 1024 elements (one syscall per batch); map types without batch
// support (LPM tries) are walked with NextKey and Lookup instead. The
// iteration's error is stored in *errp when the loop ends, nil after a
// complete walk or a break; check it after the loop:
//
//	var err error
//	for k, v := range m.All(&err) { ... }
//	if err != nil { ... }
//
// The loop body may use m (even Close it: the next batch then fails with
// ErrClosed); no lock is held while it runs.
//
// Under concurrent changes (from BPF programs or other goroutines), a batch
// walk of a hash map visits each hash bucket once, reading a whole bucket
// atomically: no key is yielded twice; a key present for the whole walk is
// yielded exactly once, with its value at the moment its bucket was read
// (values are up to one batch old: a key deleted after its batch was read
// is still yielded); a key inserted or deleted during the walk may or may
// not be yielded. An array walk reads each index once, in order. The NextKey fallback (LPM
// tries) restarts from the first key when the key under its cursor is
// deleted, so it may yield a key more than once then.
func (m *Map[K, V]) All(errp *error) iter.Seq2[K, V] {
	if errp == nil {
		panic("maps: All needs a non-nil error pointer")
	}
	return func(yield func(K, V) bool) {
		var derr error
		walk := func(kb, vb []byte) bool {
			// Fresh variables: a []byte key or value decodes into its own
			// memory, which must not be reused under a value yielded before.
			var k K
			var v V
			if derr = m.kc.Decode(kb, &k); derr != nil {
				return false
			}
			if derr = m.vc.Decode(vb, &v); derr != nil {
				return false
			}
			return yield(k, v)
		}
		if m.direct {
			// Element i of a batch buffer sits at a multiple of the type's
			// size, hence of its alignment: read it in place.
			walk = func(kb, vb []byte) bool {
				return yield(*(*K)(ptr(kb)), *(*V)(ptr(vb)))
			}
		}
		err := m.table().walk(false, walk)
		*errp = m.fail("iterate", joinLine(err, derr))
	}
}

// Keys is All without the values: see All for errp and the guarantees.
func (m *Map[K, V]) Keys(errp *error) iter.Seq[K] {
	if errp == nil {
		panic("maps: Keys needs a non-nil error pointer")
	}
	return func(yield func(K) bool) {
		for k := range m.All(errp) {
			if !yield(k) {
				return
			}
		}
	}
}

// Drain removes every element with batch lookup-and-deletes and returns what
// it removed, also when it fails part way (then err says why). An element
// that fails to decode is gone from the map all the same: Drain goes on with
// the others, and err names each such element's key bytes and wraps its
// decoding error. Arrays and LPM tries cannot be drained (ErrMapType).
func (m *Map[K, V]) Drain() (keys []K, values []V, err error) {
	err = m.table().drain(func(kb, vb []byte) error {
		var k K
		var v V
		if err := joinLine(m.kc.Decode(kb, &k), m.vc.Decode(vb, &v)); err != nil {
			return err
		}
		keys, values = append(keys, k), append(values, v)
		return nil
	})
	return keys, values, err
}

// Clear deletes every element and returns how many it deleted: batch
// lookup-and-deletes, or NextKey and Delete for map types without batches.
// An array's elements are set to zero instead, and all of them counted.
func (m *Map[K, V]) Clear() (int, error) { return m.table().clearAll() }

// BatchPut creates or replaces len(keys) elements in one syscall and returns
// how many the kernel stored (the first n of keys) with the error that
// stopped it.
func (m *Map[K, V]) BatchPut(keys []K, values []V) (int, error) {
	return batchPut(m.table(), m.kc, keys, values, "value", func(dst []byte, v *V) error {
		_, err := m.vc.EncodeSized(dst[:0], v, m.vs)
		return err
	})
}

// BatchDelete deletes the keys in one syscall and returns how many it
// deleted: the kernel stops at the first missing key (ErrKeyNotExist), so
// the first n keys are gone and the rest untouched. As with Delete, array
// elements cannot be deleted.
func (m *Map[K, V]) BatchDelete(keys []K) (int, error) { return batchDelete(m.table(), m.kc, keys) }
