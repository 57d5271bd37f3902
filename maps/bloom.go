package maps

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/bpfchan/bpfchan/internal/codec"
	"github.com/cilium/ebpf"
)

// Bloom is a typed BPF bloom filter: Push adds a value, Contains reports
// false only for values never pushed (and may report true for others).
// Values cannot be removed. It owns its descriptor and is safe for
// concurrent use.
type Bloom[V any] struct {
	m    *ebpf.Map
	name string
	vc   codec.Codec[V]
	vs   int
	lf   life
}

// NewBloomFilter creates a bloom filter sized for maxEntries values, using
// hashes hash functions (1 to 15; 0 means the kernel's default of 5).
func NewBloomFilter[V any](maxEntries uint32, hashes int) (*Bloom[V], error) {
	spec := &ebpf.MapSpec{Type: ebpf.BloomFilter, MaxEntries: maxEntries, MapExtra: uint64(hashes)}
	if hashes < 0 || hashes > 15 {
		return nil, fmt.Errorf("create %s: %d hash functions, want 0 to 15: %w", describeSpec(spec), hashes, ErrInvalidSize)
	}
	vc, err := codec.For[V]()
	if err == nil && vc.Size() < 0 {
		err = fmt.Errorf("type %s has no fixed size", vc)
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: value: %w", describeSpec(spec), err)
	}
	spec.ValueSize = uint32(vc.Size())
	em, err := create(spec)
	if err != nil {
		return nil, err
	}
	return wrapBloom(em, vc)
}

// OpenBloomFilter wraps a clone of m, a bloom filter whose value size is V's.
func OpenBloomFilter[V any](m *ebpf.Map) (*Bloom[V], error) {
	c, err := clone(m)
	if err != nil {
		return nil, err
	}
	vc, err := codec.For[V]()
	if err == nil && c.Type() != ebpf.BloomFilter {
		err = fmt.Errorf("want a bloom filter: %w", ErrMapType)
	}
	if err != nil {
		err = fmt.Errorf("open %s: %w", describe(c), err)
		c.Close()
		return nil, err
	}
	return wrapBloom(c, vc)
}

func wrapBloom[V any](em *ebpf.Map, vc codec.Codec[V]) (*Bloom[V], error) {
	name := describe(em)
	if err := vc.Check("value", em.ValueSize()); err != nil {
		em.Close()
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	return &Bloom[V]{m: em, name: name, vc: vc, vs: int(em.ValueSize())}, nil
}

// Push adds v to the filter.
func (b *Bloom[V]) Push(v V) error {
	vp, err := b.value("push", &v)
	if err != nil {
		return err
	}
	if !b.lf.acquire() {
		return opErr("push", b.name, ErrClosed)
	}
	defer b.lf.release()
	if err := b.m.Update(nil, vp, ebpf.UpdateAny); err != nil {
		return opErr("push", b.name, kernelErr(b.m.Type(), err))
	}
	return nil
}

// Contains reports whether v may have been pushed: false is certain, true
// may be a false positive.
func (b *Bloom[V]) Contains(v V) (bool, error) {
	vp, err := b.value("contains", &v)
	if err != nil {
		return false, err
	}
	if !b.lf.acquire() {
		return false, opErr("contains", b.name, ErrClosed)
	}
	defer b.lf.release()
	// The kernel reads the value to look for from the value pointer.
	err = b.m.Lookup(nil, vp)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrKeyNotExist):
		return false, nil
	}
	return false, opErr("contains", b.name, kernelErr(b.m.Type(), err))
}

func (b *Bloom[V]) value(op string, v *V) (unsafe.Pointer, error) {
	if b.vc.Direct() {
		return unsafe.Pointer(v), nil
	}
	buf, err := b.vc.EncodeSized(nil, v, b.vs)
	if err != nil {
		return nil, opErr(op, b.name, err)
	}
	return ptr(buf), nil
}

// Map returns the underlying map, owned by b.
func (b *Bloom[V]) Map() *ebpf.Map { return b.m }

// Close closes the map; later calls return ErrClosed.
func (b *Bloom[V]) Close() error {
	if b == nil {
		return nil
	}
	_, err := b.lf.shut(b.m)
	return err
}
