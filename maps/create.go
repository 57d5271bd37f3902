package maps

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/codec"
	"github.com/bpfchan/bpfchan/internal/mapref"
)

// How the New* constructors make a kernel map: the spec from the options,
// the sizes from the Go types, the name checked, errors naming the spec.

// specOf is the spec of a map of type typ and maxEntries made with opts;
// the constructor sets the rest.
func specOf(typ ebpf.MapType, maxEntries uint32, opts []MapOption) *ebpf.MapSpec {
	var c mapConfig
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return &ebpf.MapSpec{Type: typ, MaxEntries: maxEntries, Name: c.name}
}

// create makes the kernel map for spec, after checking its name; the error
// names the spec's map.
func create(spec *ebpf.MapSpec) (*ebpf.Map, error) {
	err := checkName(spec.Name)
	var m *ebpf.Map
	if err == nil {
		m, err = ebpf.NewMap(spec)
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", mapref.Spec(spec), err)
	}
	return m, nil
}

// createFixed creates the map of spec, whose keys (what is "key") or values
// ("value") are T's, after setting *size (the spec's KeySize or ValueSize)
// to T's size. T must have a fixed size; open names the function that wraps
// a map of a variable-size T made with ebpf.NewMap.
func createFixed[T any](spec *ebpf.MapSpec, size *uint32, what, open string) (*ebpf.Map, error) {
	c, err := codec.For[T]()
	if err != nil {
		return nil, fmt.Errorf("create %s: %s: %w", mapref.Spec(spec), what, err)
	}
	if c.Size() < 0 {
		return nil, fmt.Errorf("create %s: %s type %s has no fixed size: use ebpf.NewMap and %s: %w", mapref.Spec(spec), what, c, open, ErrInvalidSize)
	}
	*size = uint32(c.Size())
	return create(spec)
}

// createKV creates the map of spec for Map (perCPU false) or PerCPUMap
// (true): key and value sizes of zero are filled in from K and V, given ones
// checked. The spec is not modified.
func createKV[K, V any](spec *ebpf.MapSpec, perCPU bool) (*ebpf.Map, error) {
	if spec == nil {
		return nil, fmt.Errorf("create map: %w", ErrNilMap)
	}
	kc, vc, err := codecs[K, V]()
	if err == nil {
		err = kvType(spec.Type, perCPU)
	}
	s := spec.Copy()
	if err == nil {
		err = fillSize(&s.KeySize, kc.Size(), kc.Check, "key", "KeySize")
	}
	if err == nil {
		err = fillSize(&s.ValueSize, vc.Size(), vc.Check, "value", "ValueSize")
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", mapref.Spec(spec), err)
	}
	return create(s)
}

// codecs builds the codecs of K and V.
func codecs[K, V any]() (codec.Codec[K], codec.Codec[V], error) {
	kc, err := codec.For[K]()
	if err != nil {
		return kc, codec.Codec[V]{}, fmt.Errorf("key: %w", err)
	}
	vc, err := codec.For[V]()
	if err != nil {
		return kc, vc, fmt.Errorf("value: %w", err)
	}
	return kc, vc, nil
}

// fillSize sets *size (the spec's field) to have, the Go type's size, when
// it is zero, and checks it otherwise.
func fillSize(size *uint32, have int, check func(string, uint32) error, what, field string) error {
	if *size != 0 {
		return check(what, *size)
	}
	if have < 0 {
		return fmt.Errorf("%s size is known only per value: set the spec's %s: %w", what, field, ErrInvalidSize)
	}
	*size = uint32(have)
	return nil
}
