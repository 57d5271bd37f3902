package jetstream

import (
	"encoding"
	"encoding/binary"
	"fmt"
	"reflect"
	"unsafe"

	"github.com/cilium/ebpf"
)

// codec turns a T into the bytes of a message, a record or a map key or
// value, and back, as the core module does (its internal/codec, which this
// module cannot import): a fixed-size T without padding is copied as
// memory, in native byte order, exactly as the kernel lays it out; one with
// padding goes through encoding/binary (native order); a T implementing
// encoding.BinaryMarshaler and BinaryUnmarshaler uses them; a []byte is the
// bytes themselves.
type codec[T any] struct {
	kind codecKind
	size int // -1 when only known per value
	name string
}

type codecKind uint8

const (
	direct codecKind = iota
	packedType
	marshaler
	rawBytes
)

func codecFor[T any]() (codec[T], error) {
	var zero T
	name := reflect.TypeFor[T]().String()
	if _, ok := any(zero).([]byte); ok {
		return codec[T]{kind: rawBytes, size: -1, name: name}, nil
	}
	_, m := any(&zero).(encoding.BinaryMarshaler)
	_, u := any(&zero).(encoding.BinaryUnmarshaler)
	if m && u {
		return codec[T]{kind: marshaler, size: -1, name: name}, nil
	}
	size := binary.Size(zero)
	if size <= 0 {
		return codec[T]{}, fmt.Errorf("type %s has no fixed binary size (no pointers, slices, strings or maps allowed) and is no encoding.BinaryMarshaler: %w", name, ErrOption)
	}
	k := packedType
	if uintptr(size) == unsafe.Sizeof(zero) {
		k = direct
	}
	return codec[T]{kind: k, size: size, name: name}, nil
}

// decode fills v from b, which must be exactly the size of a fixed-size T.
func (c codec[T]) decode(b []byte, v *T) error {
	if c.size >= 0 && len(b) != c.size {
		return fmt.Errorf("decode %s: %d bytes, want %d: %w", c.name, len(b), c.size, ErrSize)
	}
	switch c.kind {
	case direct:
		copy(unsafe.Slice((*byte)(unsafe.Pointer(v)), c.size), b)
		return nil
	case packedType:
		_, err := binary.Decode(b, binary.NativeEndian, v)
		return err
	case rawBytes:
		*any(v).(*[]byte) = append([]byte(nil), b...)
		return nil
	default:
		return any(v).(encoding.BinaryUnmarshaler).UnmarshalBinary(b)
	}
}

// encode appends the bytes of v to dst.
func (c codec[T]) encode(dst []byte, v *T) ([]byte, error) {
	switch c.kind {
	case direct:
		return append(dst, unsafe.Slice((*byte)(unsafe.Pointer(v)), c.size)...), nil
	case packedType:
		return binary.Append(dst, binary.NativeEndian, v)
	case rawBytes:
		return append(dst, *any(v).(*[]byte)...), nil
	default:
		b, err := any(v).(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return dst, fmt.Errorf("encode %s: %w", c.name, err)
		}
		return append(dst, b...), nil
	}
}

// guard runs a user callback, turning a panic into an error matching
// ErrPanic that carries the panic value.
func guard(what string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: %w: %v", what, ErrPanic, r)
		}
	}()
	return f()
}

// mapName names a live map as every error of bpfchan does:
// `Hash map "blocked" (id 17)`, `Hash map (id 17)` without a name (the
// core's internal/mapref, which this module cannot import).
func mapName(m *ebpf.Map) string {
	s := m.Type().String() + " map"
	info, err := m.Info()
	if err != nil {
		return s
	}
	if info.Name != "" {
		s += fmt.Sprintf(" %q", info.Name)
	}
	if id, ok := info.ID(); ok {
		s += fmt.Sprintf(" (id %d)", id)
	}
	return s
}
