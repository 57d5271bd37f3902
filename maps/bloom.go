package maps

import (
	"errors"
	"fmt"

	"github.com/bpfchan/bpfchan/internal/codec"
	"github.com/bpfchan/bpfchan/internal/mapref"
	"github.com/cilium/ebpf"
)

// Bloom is a typed BPF bloom filter: Push adds a value, Contains reports
// false only for values never pushed (and may report true for others).
// Values cannot be removed. It owns its descriptor and is safe for
// concurrent use.
type Bloom[V any] struct {
	handle
	vc codec.Codec[V]
	vs int
}

// NewBloomFilter creates a bloom filter sized for maxEntries values, using
// hashes hash functions (1 to 15; 0 means the kernel's default of 5).
func NewBloomFilter[V any](maxEntries uint32, hashes int, opts ...MapOption) (*Bloom[V], error) {
	spec := specOf(ebpf.BloomFilter, maxEntries, opts)
	spec.MapExtra = uint64(hashes)
	if hashes < 0 || hashes > 15 {
		return nil, fmt.Errorf("create %s: %d hash functions, want 0 to 15: %w", mapref.Spec(spec), hashes, ErrInvalidSize)
	}
	em, err := createFixed[V](spec, &spec.ValueSize, "value", "OpenBloomFilter")
	if err != nil {
		return nil, err
	}
	return adoptBloom[V](em)
}

// OpenBloomFilter wraps a clone of m, a bloom filter whose value size is V's.
func OpenBloomFilter[V any](m *ebpf.Map) (*Bloom[V], error) {
	return openClone(m, adoptBloom[V])
}

// adoptBloom wraps em, which the new Bloom owns: em is closed on error.
func adoptBloom[V any](em *ebpf.Map) (*Bloom[V], error) {
	vc, err := codec.For[V]()
	if err != nil {
		err = fmt.Errorf("value: %w", err)
	}
	b := &Bloom[V]{vc: vc}
	if err := b.own(em, err, wantType(em.Type(), ebpf.BloomFilter), vc.Check("value", em.ValueSize())); err != nil {
		return nil, err
	}
	b.vs = int(em.ValueSize())
	return b, nil
}

// Push adds v to the filter.
func (b *Bloom[V]) Push(v V) error {
	vp, err := encodePtr(b.vc, &v, b.vs)
	if err != nil {
		return opErr("push", b.name, err)
	}
	return b.do("push", func() error { return b.m.Update(nil, vp, ebpf.UpdateAny) })
}

// Contains reports whether v may have been pushed: false is certain, true
// may be a false positive.
func (b *Bloom[V]) Contains(v V) (bool, error) {
	vp, err := encodePtr(b.vc, &v, b.vs)
	if err != nil {
		return false, opErr("contains", b.name, err)
	}
	found := true
	err = b.do("contains", func() error {
		// The kernel reads the value to look for from the value pointer.
		err := b.m.Lookup(nil, vp)
		if errors.Is(err, ErrKeyNotExist) {
			found = false
			return nil
		}
		return err
	})
	return found && err == nil, err
}

// Close closes the map; later calls return ErrClosed.
func (b *Bloom[V]) Close() error {
	if b == nil {
		return nil
	}
	_, err := b.close()
	return err
}
