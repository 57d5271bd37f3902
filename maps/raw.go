package maps

import (
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/bpfchan/bpfchan/internal/codec"
	"github.com/cilium/ebpf"
)

// defaultBatch is the number of elements one batch syscall asks for.
const defaultBatch = 1024

// maxBatch bounds the buffer growth on ENOSPC (a hash bucket larger than the
// batch): no real bucket comes near it.
const maxBatch = 1 << 20

// raw is a slice of n fixed-size byte arrays, handed to cilium's batch and
// per-CPU calls. Its element size equals the map's key or value size, so
// cilium sees a slice of the right length whose memory it uses directly,
// whatever the Go type: encoding and decoding happen here, once per element,
// with the codec.
type raw struct {
	v any    // the []([size]byte) value given to cilium
	b []byte // the same memory
}

// makeRaw allocates a raw of n elements of size bytes. The memory is
// 8-byte aligned, so element i (at a multiple of its size) is
// aligned for any Go type of that size and can be read in place.
func makeRaw(size, n int) raw {
	words := make([]uint64, (size*n+7)/8)
	p := unsafe.Pointer(unsafe.SliceData(words))
	s := reflect.SliceAt(reflect.ArrayOf(size, reflect.TypeFor[byte]()), p, n)
	return raw{v: s.Interface(), b: unsafe.Slice((*byte)(p), size*n)}
}

// ptr is the address of b for cilium's unsafe.Pointer fast path.
func ptr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

// table is the byte-level view of a key/value map shared by Map, PerCPUMap
// and MapOfMaps: batch walks, batch updates and deletes, the fallback walk.
type table struct {
	*handle
	index
	ks, vs  int  // key size; value size of one element (one CPU's value for per-CPU maps)
	per     int  // values per key: 1, or the number of possible CPUs
	perCPU  bool // the value is one per possible CPU
	batch   int  // elements per batch; 0 means defaultBatch
	noBatch *atomic.Bool
}

// errNoBatch says the map type has no batch operations; the caller falls
// back to NextKey and Lookup.
var errNoBatch = errors.New("batch operations not supported")

// walk visits every element with batch lookups (or lookup-and-deletes when
// del is set), yielding the key bytes and the value bytes (per values of vs
// bytes each, packed). The slices are reused after yield returns. The lock
// is held only during each syscall, never while yield runs.
func (t *table) walk(del bool, yield func(k, v []byte) bool) error {
	if t.noBatch.Load() {
		if del {
			return errNoBatch
		}
		return t.walkKeys(yield)
	}
	n := t.batch
	if n <= 0 {
		n = defaultBatch
	}
	cursor := new(ebpf.MapBatchCursor)
	keys, vals := makeRaw(t.ks, n), makeRaw(t.vs, n*t.per)
	first := true
	for {
		if !t.lf.acquire() {
			return ErrClosed
		}
		var cnt int
		var err error
		if del {
			cnt, err = t.m.BatchLookupAndDelete(cursor, keys.v, vals.v, nil)
		} else {
			cnt, err = t.m.BatchLookup(cursor, keys.v, vals.v, nil)
		}
		t.lf.release()
		end := errors.Is(err, ErrKeyNotExist)
		switch {
		case err == nil || end:
		case errors.Is(err, syscall.ENOSPC) && cnt == 0 && n < maxBatch:
			// A hash bucket holds more elements than fit: grow, and ask
			// again from the same cursor (the kernel did not advance it).
			n *= 2
			keys, vals = makeRaw(t.ks, n), makeRaw(t.vs, n*t.per)
			continue
		case first && errors.Is(err, ebpf.ErrNotSupported):
			if del {
				// Arrays look up in batches but cannot delete.
				return errNoBatch
			}
			t.noBatch.Store(true)
			return t.walkKeys(yield)
		default:
			return err
		}
		first = false
		vsz := t.vs * t.per
		for i := range cnt {
			if !yield(keys.b[i*t.ks:(i+1)*t.ks], vals.b[i*vsz:(i+1)*vsz]) {
				return nil
			}
		}
		if end {
			return nil
		}
	}
}

// walkKeys is the fallback for map types without batch operations: one
// NextKey and one Lookup per element. A key deleted between the two is
// skipped. When the key under the cursor is deleted the kernel starts again
// from the first key, so a walk under concurrent deletes may yield a key
// twice; it gives up with ebpf.ErrIterationAborted after 4×MaxEntries+16
// steps rather than loop forever.
func (t *table) walkKeys(yield func(k, v []byte) bool) error {
	cur, next := makeRaw(t.ks, 1).b, makeRaw(t.ks, 1).b
	val := makeRaw(t.vs, t.per)
	limit := 4*int(t.m.MaxEntries()) + 16
	for i := 0; ; i++ {
		if i >= limit {
			return ebpf.ErrIterationAborted
		}
		if !t.lf.acquire() {
			return ErrClosed
		}
		var key any
		if i > 0 {
			key = ptr(cur)
		}
		err := t.m.NextKey(key, ptr(next))
		if err == nil {
			err = t.lookup(ptr(next), val)
			if errors.Is(err, ErrKeyNotExist) {
				err = errSkip
			}
		}
		t.lf.release()
		switch {
		case errors.Is(err, errSkip):
		case errors.Is(err, ErrKeyNotExist):
			return nil
		case err != nil:
			return err
		default:
			if !yield(next, val.b) {
				return nil
			}
		}
		cur, next = next, cur
	}
}

var errSkip = errors.New("skip")

// lookup reads the value of the key at kp into out (lock held by caller).
func (t *table) lookup(kp unsafe.Pointer, out raw) error {
	if t.perCPU {
		return t.m.Lookup(kp, out.v)
	}
	return t.m.Lookup(kp, ptr(out.b))
}

// encodeKeys encodes keys for a batch call of op, checking array indexes.
func encodeKeys[K any](t *table, kc codec.Codec[K], op string, keys []K) (raw, error) {
	kr := makeRaw(t.ks, len(keys))
	for i := range keys {
		kb := kr.b[i*t.ks : (i+1)*t.ks]
		if _, err := kc.EncodeSized(kb[:0], &keys[i], t.ks); err != nil {
			return kr, opErr(op, t.name, fmt.Errorf("key %d: %w", i, err))
		}
		if err := t.checkIndex(op, t.name, ptr(kb)); err != nil {
			return kr, err
		}
	}
	return kr, nil
}

// batchPut creates or replaces len(keys) elements of t in one syscall, the
// batch put of Map and PerCPUMap: enc writes one key's value (t.per values
// of t.vs bytes) into dst, and what names the value in its error. It returns
// how many the kernel stored with the error that stopped it.
func batchPut[K, V any](t *table, kc codec.Codec[K], keys []K, values []V, what string, enc func(dst []byte, v *V) error) (int, error) {
	if len(keys) != len(values) {
		return 0, opErr("batch put", t.name, fmt.Errorf("%d keys but %d values", len(keys), len(values)))
	}
	if len(keys) == 0 {
		return 0, nil
	}
	kr, err := encodeKeys(t, kc, "batch put", keys)
	if err != nil {
		return 0, err
	}
	vr, size := makeRaw(t.vs, len(values)*t.per), t.vs*t.per
	for i := range values {
		if err := enc(vr.b[i*size:(i+1)*size], &values[i]); err != nil {
			return 0, opErr("batch put", t.name, fmt.Errorf("%s %d: %w", what, i, err))
		}
	}
	return t.put("batch put", kr, vr)
}

// batchDelete deletes keys from t in one syscall, the batch delete of Map
// and PerCPUMap, and returns how many it deleted.
func batchDelete[K any](t *table, kc codec.Codec[K], keys []K) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	kr, err := encodeKeys(t, kc, "batch delete", keys)
	if err != nil {
		return 0, err
	}
	return t.del("batch delete", kr)
}

// walkKeys gives yield t's keys, decoded by kc, with batch lookups as All
// does (the walk behind Keys of PerCPUMap and MapOfMaps), and returns the
// iteration's error.
func walkKeys[K any](t *table, kc codec.Codec[K], yield func(K) bool) error {
	var derr error
	err := t.walk(false, func(kb, _ []byte) bool {
		var k K
		if derr = kc.Decode(kb, &k); derr != nil {
			return false
		}
		return yield(k)
	})
	return t.fail("iterate", joinLine(err, derr))
}

// keyBytes encodes k (ks bytes) for op on the map called name and checks an
// array index: the key encoding of PerCPUMap and MapOfMaps.
func keyBytes[K any](kc codec.Codec[K], ix *index, ks int, op, name string, k *K) ([]byte, error) {
	kb, err := kc.EncodeSized(nil, k, ks)
	if err != nil {
		return nil, opErr(op, name, err)
	}
	if err := ix.checkIndex(op, name, ptr(kb)); err != nil {
		return nil, err
	}
	return kb, nil
}

// put writes the encoded keys and values in one syscall and returns how
// many the kernel stored, with the error (of op) that stopped it.
func (t *table) put(op string, keys, vals raw) (int, error) {
	n, err := t.batchUpdate(keys, vals, ebpf.UpdateAny)
	return n, t.fail(op, err)
}

// del deletes the encoded keys in one syscall and returns how many it
// deleted, with the error (of op) that stopped it. Arrays refuse.
func (t *table) del(op string, keys raw) (int, error) {
	if err := noDelete(op, t.name, t.m.Type()); err != nil {
		return 0, err
	}
	if !t.lf.acquire() {
		return 0, opErr(op, t.name, ErrClosed)
	}
	n, err := t.m.BatchDelete(keys.v, nil)
	t.lf.release()
	return n, t.fail(op, kernelErr(t.m.Type(), err))
}

// drain removes every element with batch lookup-and-deletes, giving each
// to keep. The kernel has deleted an element before keep sees it: an
// element keep fails on is reported in the error (with its key bytes) and
// the drain goes on.
func (t *table) drain(keep func(k, v []byte) error) error {
	var errs []error
	err := t.walk(true, func(kb, vb []byte) bool {
		if err := keep(kb, vb); err != nil {
			errs = append(errs, fmt.Errorf("element with key %x lost: %w", kb, err))
		}
		return true
	})
	if errors.Is(err, errNoBatch) {
		err = fmt.Errorf("no batch lookup-and-delete: %w", ErrMapType)
	}
	return t.fail("drain", joinLine(append(errs, err)...))
}

// clearAll is clear with its error wrapped.
func (t *table) clearAll() (int, error) {
	n, err := t.clear()
	return n, t.fail("clear", err)
}

// batchUpdate writes the encoded keys and values in one syscall and
// returns how many the kernel stored.
func (t *table) batchUpdate(keys, vals raw, flags ebpf.MapUpdateFlags) (int, error) {
	if !t.lf.acquire() {
		return 0, ErrClosed
	}
	defer t.lf.release()
	n, err := t.m.BatchUpdate(keys.v, vals.v, &ebpf.BatchOptions{ElemFlags: uint64(flags)})
	return n, kernelErr(t.m.Type(), err)
}

// clear removes every element and returns how many it removed. Arrays
// cannot delete: their elements are set to zero instead (and counted).
func (t *table) clear() (int, error) {
	typ := t.m.Type()
	if typ == ebpf.Array || typ == ebpf.PerCPUArray || typ == ebpf.ArrayOfMaps {
		if typ == ebpf.ArrayOfMaps {
			return 0, fmt.Errorf("an array of maps has no zero value to clear with: %w", ErrMapType)
		}
		// Zero values, written a batch at a time: the buffers stay small
		// whatever the array's size.
		n, chunk := int(t.m.MaxEntries()), t.batch
		if chunk <= 0 {
			chunk = defaultBatch
		}
		done := 0
		for done < n {
			c := min(chunk, n-done)
			keys, vals := makeRaw(t.ks, c), makeRaw(t.vs, c*t.per)
			for i := range c {
				putIndex(keys.b[i*4:], uint32(done+i))
			}
			stored, err := t.batchUpdate(keys, vals, ebpf.UpdateAny)
			done += stored
			if err != nil {
				return done, err
			}
		}
		return n, nil
	}
	count := 0
	err := t.walk(true, func(_, _ []byte) bool { count++; return true })
	if !errors.Is(err, errNoBatch) {
		return count, err
	}
	// No batches: delete the first key until there is none. A map whose
	// first key never goes away (a slot that cannot be deleted) ends with
	// ebpf.ErrIterationAborted after as many steps as walkKeys allows.
	key := make([]byte, t.ks)
	limit := 4*int(t.m.MaxEntries()) + 16
	for i := 0; ; i++ {
		if i >= limit {
			return count, ebpf.ErrIterationAborted
		}
		if !t.lf.acquire() {
			return count, ErrClosed
		}
		err := t.m.NextKey(nil, ptr(key))
		if err == nil {
			err = t.m.Delete(ptr(key))
		}
		t.lf.release()
		switch {
		case err == nil:
			count++
		case errors.Is(err, ErrKeyNotExist):
			// NextKey found none (done), or the key vanished (retry).
			if !t.lf.acquire() {
				return count, ErrClosed
			}
			err = t.m.NextKey(nil, ptr(key))
			t.lf.release()
			if errors.Is(err, ErrKeyNotExist) {
				return count, nil
			}
		default:
			return count, err
		}
	}
}
