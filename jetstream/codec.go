package jetstream

import (
	"encoding"
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
	"unsafe"

	"github.com/cilium/ebpf"
)

// codec turns a T into the bytes of a message, a record or a map key or
// value, and back. It behaves as the core module's internal/codec, which
// this module does not import (a core release may change its internal
// packages; a parity test in this module compares the two):
//
//   - a fixed-size T without padding is copied as memory, in native byte
//     order, exactly as the kernel lays it out; if it holds a bool, each
//     bool byte is made 0 or 1 after the copy, so every decoded bool is a
//     Go bool;
//   - a fixed-size T with padding goes through encoding/binary (native
//     order), which sets its fields one by one through reflection: a T with
//     a field reflection cannot set (unexported, not blank) is refused;
//   - a T implementing encoding.BinaryMarshaler and BinaryUnmarshaler uses
//     them, and a panic in them is an error matching ErrPanic;
//   - a []byte is the bytes themselves.
//
// decode and encode never panic, whatever the bytes.
type codec[T any] struct {
	kind  codecKind
	size  int // -1 when only known per value
	name  string
	bools []span // kind withBools: where T's bools are
}

type codecKind uint8

const (
	direct    codecKind = iota // fixed size, no padding, no bool: memory copy
	withBools                  // direct, then each bool byte made 0 or 1
	padded                     // fixed size with padding: encoding/binary
	marshaler                  // encoding.BinaryMarshaler and BinaryUnmarshaler
	rawBytes                   // []byte
)

// span is n bytes at offset off of a value, each of them a bool.
type span struct{ off, n uintptr }

// codecFor returns T's codec, or an error naming T (matching ErrOption)
// when no codec can encode it.
func codecFor[T any]() (codec[T], error) {
	var zero T
	t := reflect.TypeFor[T]()
	name := t.String()
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
	if uintptr(size) != t.Size() {
		if f := strings.TrimPrefix(unexported(t), "."); f != "" {
			return codec[T]{}, fmt.Errorf("type %s has padding, so it is encoded field by field, and its field %s is unexported: export it, name it _, or remove the padding: %w", name, f, ErrOption)
		}
		return codec[T]{kind: padded, size: size, name: name}, nil
	}
	if b := boolSpans(t, 0, nil); len(b) > 0 {
		return codec[T]{kind: withBools, size: size, name: name, bools: b}, nil
	}
	return codec[T]{kind: direct, size: size, name: name}, nil
}

// unexported returns the path of the first field of t that encoding/binary
// would have to set but cannot, such as ".b" or ".In[i].x"; "" when there
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

// decode fills v from b, which must be exactly the size of a fixed-size T
// (else an error matching ErrSize).
func (c codec[T]) decode(b []byte, v *T) error {
	if c.size >= 0 && len(b) != c.size {
		return fmt.Errorf("decode %s: %d bytes, want %d: %w", c.name, len(b), c.size, ErrSize)
	}
	switch c.kind {
	case direct:
		copy(c.memory(v), b)
		return nil
	case withBools:
		mem := c.memory(v)
		copy(mem, b)
		for _, s := range c.bools {
			for i := s.off; i < s.off+s.n; i++ {
				mem[i] = min(mem[i], 1)
			}
		}
		return nil
	case padded:
		_, err := binary.Decode(b, binary.NativeEndian, v)
		return err
	case rawBytes:
		*any(v).(*[]byte) = append([]byte(nil), b...)
		return nil
	default:
		return c.unmarshal(b, v)
	}
}

// encode appends the bytes of v to dst.
func (c codec[T]) encode(dst []byte, v *T) ([]byte, error) {
	switch c.kind {
	case direct, withBools:
		return append(dst, c.memory(v)...), nil
	case padded:
		return binary.Append(dst, binary.NativeEndian, v)
	case rawBytes:
		return append(dst, *any(v).(*[]byte)...), nil
	default:
		b, err := c.marshal(v)
		if err != nil {
			return dst, err
		}
		return append(dst, b...), nil
	}
}

// memory is v's own memory (kinds direct and withBools).
func (c codec[T]) memory(v *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), c.size)
}

// unmarshal runs T's UnmarshalBinary, turning a panic into an error.
func (c codec[T]) unmarshal(b []byte, v *T) (err error) {
	defer catch("decode "+c.name, &err)
	return any(v).(encoding.BinaryUnmarshaler).UnmarshalBinary(b)
}

// marshal runs T's MarshalBinary, turning a panic into an error.
func (c codec[T]) marshal(v *T) (b []byte, err error) {
	defer catch("encode "+c.name, &err)
	b, err = any(v).(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", c.name, err)
	}
	return b, nil
}

// guard runs a user callback, turning a panic into an error matching
// ErrPanic that carries the panic value.
func guard(what string, f func() error) (err error) {
	defer catch(what, &err)
	return f()
}

// catch, deferred, turns a panic into *err, an error matching ErrPanic
// that says what panicked and carries the panic value (on one line).
func catch(what string, err *error) {
	if r := recover(); r != nil {
		v := strings.ReplaceAll(fmt.Sprint(r), "\n", " ")
		*err = fmt.Errorf("%s: %w: %s", what, ErrPanic, v)
	}
}

// mapName names a live map as every error of bpfchan does:
// `Hash map "blocked" (id 17)`, `Hash map (id 17)` without a name (the
// core's internal/mapref, which this module does not import).
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
