package codec

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unsafe"
)

var (
	// ErrSize reports a buffer or value whose size does not match the
	// codec's.
	ErrSize = errors.New("size mismatch")
	// ErrPanic reports that a type's own MarshalBinary or UnmarshalBinary
	// panicked; the error carries the panic value.
	ErrPanic = errors.New("callback panicked")
)

type kind uint8

const (
	invalid   kind = iota // the zero Codec
	direct                // fixed size, no padding, no bool: memory copy
	bools                 // direct but with bools: memory copy, then each bool made 0 or 1
	packed                // fixed size with padding: encoding/binary
	marshaler             // encoding.BinaryMarshaler / BinaryUnmarshaler
	raw                   // []byte
)

// Codec encodes and decodes values of type T. The zero value is not usable
// (its Decode and Encode return errors); build one with For.
type Codec[T any] struct {
	kind  kind
	size  int // -1 when only known per value (marshaler, raw)
	name  string
	bools []span // kind bools: where T's bools are
}

// span is n bytes at offset off of a value, each of them a bool.
type span struct{ off, n uintptr }

// For returns the codec for T, or an error naming T when T has no fixed
// binary size and implements neither encoding interface, or when it has
// padding (so encoding/binary must set its fields one by one, through
// reflection) and a field that reflection cannot set: an unexported one,
// at any depth, that is not blank (_).
func For[T any]() (Codec[T], error) {
	var zero T
	t := reflect.TypeFor[T]()
	name := t.String()
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
	if uintptr(size) != t.Size() {
		if f := strings.TrimPrefix(unexported(t), "."); f != "" {
			return Codec[T]{}, fmt.Errorf("type %s has padding, so it is encoded field by field, and its field %s is unexported: export it, name it _, or remove the padding", name, f)
		}
		return Codec[T]{kind: packed, size: size, name: name}, nil
	}
	if b := boolSpans(t, 0, nil); len(b) > 0 {
		return Codec[T]{kind: bools, size: size, name: name, bools: b}, nil
	}
	return Codec[T]{kind: direct, size: size, name: name}, nil
}

// unexported returns the path of the first field of t that encoding/binary
// would have to set but cannot (an unexported one, or one reached through
// an unexported embedded struct), such as "b" or "In[i].x"; "" when there
// is none. Blank fields are skipped whole, as encoding/binary skips them.
func unexported(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Array:
		if p := unexported(t.Elem()); p != "" {
			return "[i]" + p
		}
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			switch {
			case f.Name == "_":
			case !f.IsExported():
				return "." + f.Name
			default:
				if p := unexported(f.Type); p != "" {
					return "." + f.Name + p
				}
			}
		}
	}
	return ""
}

// boolSpans appends where the bools of t are when t lies at offset off,
// merging neighbours.
func boolSpans(t reflect.Type, off uintptr, spans []span) []span {
	switch t.Kind() {
	case reflect.Bool:
		if n := len(spans); n > 0 && spans[n-1].off+spans[n-1].n == off {
			spans[n-1].n++
			return spans
		}
		return append(spans, span{off, 1})
	case reflect.Array:
		elem := boolSpans(t.Elem(), 0, nil)
		if len(elem) == 0 {
			return spans
		}
		for i := range uintptr(t.Len()) {
			for _, s := range elem {
				for j := range s.n {
					spans = boolSpans(reflect.TypeFor[bool](), off+i*t.Elem().Size()+s.off+j, spans)
				}
			}
		}
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			spans = boolSpans(f.Type, off+f.Offset, spans)
		}
	}
	return spans
}

// Size is the encoded size in bytes, or -1 when it is known only per value.
func (c Codec[T]) Size() int { return c.size }

// Direct reports whether values are copied as raw memory both ways, so a
// caller may copy them itself (a type holding a bool is not: a byte other
// than 0 or 1 is no Go bool, and decoding makes it one).
func (c Codec[T]) Direct() bool { return c.kind == direct }

// ReadOnly reports whether Decode only reads its input and keeps none of
// it, so it may be handed bytes that are read-only or reused after the
// call. It is false for a type's UnmarshalBinary, which may do
// anything with them.
func (c Codec[T]) ReadOnly() bool {
	switch c.kind {
	case direct, bools, packed, raw: // a copy, encoding/binary, an append
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
	if c.size >= 0 && int64(c.size) != int64(want) {
		return fmt.Errorf("%s size: Go type %s is %d bytes, map has %d: %w", what, c.name, c.size, want, ErrSize)
	}
	return nil
}

// Decode fills v from b. b must be exactly Size bytes for fixed-size types,
// else the error matches ErrSize. Whatever b holds, Decode does not panic
// (a type's own UnmarshalBinary that panics is reported as ErrPanic).
func (c Codec[T]) Decode(b []byte, v *T) error {
	switch c.kind {
	case direct, bools, packed:
		if len(b) != c.size {
			return fmt.Errorf("decode %s: %d bytes, want %d: %w", c.name, len(b), c.size, ErrSize)
		}
	}
	switch c.kind {
	case direct:
		copy(c.memory(v), b)
		return nil
	case bools:
		mem := c.memory(v)
		copy(mem, b)
		for _, s := range c.bools {
			for i := s.off; i < s.off+s.n; i++ {
				if mem[i] > 1 {
					mem[i] = 1
				}
			}
		}
		return nil
	case packed:
		_, err := binary.Decode(b, binary.NativeEndian, v)
		return err
	case raw:
		*any(v).(*[]byte) = append((*any(v).(*[]byte))[:0], b...)
		return nil
	case marshaler:
		return c.unmarshal(b, v)
	}
	return c.zeroErr("decode")
}

// Encode appends the bytes of v to dst and returns the result. For a
// fixed-size type exactly Size bytes are appended.
func (c Codec[T]) Encode(dst []byte, v *T) ([]byte, error) {
	switch c.kind {
	case direct, bools:
		return append(dst, c.memory(v)...), nil
	case packed:
		return binary.Append(dst, binary.NativeEndian, v)
	case raw:
		return append(dst, *any(v).(*[]byte)...), nil
	case marshaler:
		b, err := c.marshal(v)
		if err != nil {
			return dst, err
		}
		return append(dst, b...), nil
	}
	return dst, c.zeroErr("encode")
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

// memory is v's own memory (kinds direct and bools).
// Bytes returns the memory of v itself for a direct codec (no copy: the
// slice aliases v), and ok=false otherwise. A sink that copies the value
// into shared memory uses it to skip an encode.
func (c Codec[T]) Bytes(v *T) (b []byte, ok bool) {
	if c.kind != direct {
		return nil, false
	}
	return c.memory(v), true
}

func (c Codec[T]) memory(v *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), c.size)
}

// unmarshal runs T's UnmarshalBinary, turning a panic into an error.
func (c Codec[T]) unmarshal(b []byte, v *T) (err error) {
	defer c.catch("decode", &err)
	return any(v).(encoding.BinaryUnmarshaler).UnmarshalBinary(b)
}

// marshal runs T's MarshalBinary, turning a panic into an error.
func (c Codec[T]) marshal(v *T) (b []byte, err error) {
	defer c.catch("encode", &err)
	b, err = any(v).(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", c.name, err)
	}
	return b, nil
}

// catch, deferred, turns a panic of T's own method into *err.
func (c Codec[T]) catch(op string, err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%s %s: %w: %v", op, c.name, ErrPanic, r)
	}
}

// zeroErr is the error of the zero Codec, which For never returns with a
// nil error.
func (c Codec[T]) zeroErr(op string) error {
	return fmt.Errorf("%s %s: the zero Codec, not made by For", op, reflect.TypeFor[T]())
}
