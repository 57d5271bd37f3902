package codec

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"unsafe"
)

// ErrSize reports a buffer or value whose size does not match the codec's.
var ErrSize = errors.New("size mismatch")

type kind uint8

const (
	direct    kind = iota // fixed size, no padding: memory copy
	packed                // fixed size with padding: encoding/binary
	marshaler             // encoding.BinaryMarshaler / BinaryUnmarshaler
	raw                   // []byte
)

// Codec encodes and decodes values of type T. The zero value is not usable;
// build one with For.
type Codec[T any] struct {
	kind kind
	size int // -1 when only known per value (marshaler, raw)
	name string
}

// For returns the codec for T, or an error when T has no fixed binary size
// and implements neither encoding interface.
func For[T any]() (Codec[T], error) {
	var zero T
	name := reflect.TypeFor[T]().String()
	if _, ok := any(zero).([]byte); ok {
		return Codec[T]{kind: raw, size: -1, name: name}, nil
	}
	_, m := any(&zero).(encoding.BinaryMarshaler)
	_, u := any(&zero).(encoding.BinaryUnmarshaler)
	if m && u {
		return Codec[T]{kind: marshaler, size: -1, name: name}, nil
	}
	size := binary.Size(zero)
	if size <= 0 {
		return Codec[T]{}, fmt.Errorf("type %s has no fixed binary size (no pointers, slices, strings or maps allowed) and is no encoding.BinaryMarshaler", name)
	}
	k := packed
	if uintptr(size) == unsafe.Sizeof(zero) {
		k = direct
	}
	return Codec[T]{kind: k, size: size, name: name}, nil
}

// Size is the encoded size in bytes, or -1 when it is known only per value.
func (c Codec[T]) Size() int { return c.size }

// Direct reports whether values are copied as raw memory.
func (c Codec[T]) Direct() bool { return c.kind == direct }

// ReadOnly reports whether Decode only reads its input and keeps none of
// it, so it may be handed bytes that are read-only or reused after the
// call. It is false for a type's UnmarshalBinary, which may do
// anything with them.
func (c Codec[T]) ReadOnly() bool {
	switch c.kind {
	case direct, packed, raw: // a copy, encoding/binary, an append
		return true
	}
	return false
}

// String names the Go type.
func (c Codec[T]) String() string { return c.name }

// Check compares the codec's size with want, the size the map declares for
// what (such as "key" or "value"). A codec whose size is known only per value
// passes; its values are checked as they are encoded.
func (c Codec[T]) Check(what string, want uint32) error {
	if c.size >= 0 && c.size != int(want) {
		return fmt.Errorf("%s size: Go type %s is %d bytes, map has %d: %w", what, c.name, c.size, want, ErrSize)
	}
	return nil
}

// Decode fills v from b. b must be exactly Size bytes for fixed-size types.
func (c Codec[T]) Decode(b []byte, v *T) error {
	switch c.kind {
	case direct:
		if len(b) != c.size {
			return fmt.Errorf("decode %s: %d bytes, want %d: %w", c.name, len(b), c.size, ErrSize)
		}
		copy(unsafe.Slice((*byte)(unsafe.Pointer(v)), c.size), b)
		return nil
	case packed:
		if len(b) != c.size {
			return fmt.Errorf("decode %s: %d bytes, want %d: %w", c.name, len(b), c.size, ErrSize)
		}
		_, err := binary.Decode(b, binary.NativeEndian, v)
		return err
	case raw:
		*any(v).(*[]byte) = append((*any(v).(*[]byte))[:0], b...)
		return nil
	default:
		return any(v).(encoding.BinaryUnmarshaler).UnmarshalBinary(b)
	}
}

// Encode appends the bytes of v to dst and returns the result. For a
// fixed-size type exactly Size bytes are appended.
func (c Codec[T]) Encode(dst []byte, v *T) ([]byte, error) {
	switch c.kind {
	case direct:
		return append(dst, unsafe.Slice((*byte)(unsafe.Pointer(v)), c.size)...), nil
	case packed:
		return binary.Append(dst, binary.NativeEndian, v)
	case raw:
		return append(dst, *any(v).(*[]byte)...), nil
	default:
		b, err := any(v).(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return dst, fmt.Errorf("encode %s: %w", c.name, err)
		}
		return append(dst, b...), nil
	}
}

// EncodeSized is Encode for a destination of a known size: it fails, naming
// both sizes, when v does not encode to exactly want bytes.
func (c Codec[T]) EncodeSized(dst []byte, v *T, want int) ([]byte, error) {
	n := len(dst)
	out, err := c.Encode(dst, v)
	if err != nil {
		return dst, err
	}
	if got := len(out) - n; got != want {
		return dst, fmt.Errorf("encode %s: %d bytes, map wants %d: %w", c.name, got, want, ErrSize)
	}
	return out, nil
}

// Bytes returns the memory of v itself for a direct codec (no copy), and
// ok=false otherwise. The slice aliases v.
func (c Codec[T]) Bytes(v *T) (b []byte, ok bool) {
	if c.kind != direct {
		return nil, false
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), c.size), true
}
