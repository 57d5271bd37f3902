package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"unsafe"

	"github.com/bpfchan/bpfchan/internal/testenv"
)

type flat struct {
	A uint32
	B uint32
	C uint64
}

type padded struct {
	A uint8
	B uint64
}

type text struct{ s string }

func (t text) MarshalBinary() ([]byte, error)  { return []byte(t.s), nil }
func (t *text) UnmarshalBinary(b []byte) error { t.s = string(b); return nil }

func roundTrip[T comparable](t *testing.T, v T, wantSize int, wantDirect bool) {
	t.Helper()
	c, err := For[T]()
	if err != nil {
		t.Fatal(err)
	}
	if c.Size() != wantSize || c.Direct() != wantDirect {
		t.Fatalf("%s: size %d direct %v, want %d %v", c, c.Size(), c.Direct(), wantSize, wantDirect)
	}
	b, err := c.Encode(nil, &v)
	if err != nil {
		t.Fatal(err)
	}
	var got T
	if err := c.Decode(b, &got); err != nil {
		t.Fatal(err)
	}
	if got != v {
		t.Fatalf("%s: got %v, want %v", c, got, v)
	}
}

func TestRoundTrip(t *testing.T) {
	roundTrip(t, uint32(7), 4, true)
	roundTrip(t, flat{1, 2, 3}, 16, true)
	roundTrip(t, padded{1, 2}, 9, false)
	roundTrip(t, [3]uint16{1, 2, 3}, 6, true)
	roundTrip(t, text{"hi"}, -1, false)
}

func TestDirectMatchesNativeEncoding(t *testing.T) {
	c, _ := For[flat]()
	v := flat{0x01020304, 5, 0x0102030405060708}
	got, _ := c.Encode(nil, &v)
	want, _ := binary.Append(nil, binary.NativeEndian, v)
	if !bytes.Equal(got, want) {
		t.Fatalf("direct %x, encoding/binary %x", got, want)
	}
}

func TestPaddedSkipsPadding(t *testing.T) {
	c, _ := For[padded]()
	b, _ := c.Encode(nil, &padded{1, 2})
	if len(b) != 9 {
		t.Fatalf("got %d bytes, want 9", len(b))
	}
}

func TestErrors(t *testing.T) {
	if _, err := For[string](); err == nil || !strings.Contains(err.Error(), "string") {
		t.Fatalf("For[string]: %v", err)
	}
	c, _ := For[uint64]()
	err := c.Check("value", 4)
	if !errors.Is(err, ErrSize) || !strings.Contains(err.Error(), "uint64 is 8 bytes, map has 4") {
		t.Fatalf("Check: %v", err)
	}
	var v uint64
	if err := c.Decode(make([]byte, 7), &v); !errors.Is(err, ErrSize) {
		t.Fatalf("Decode short: %v", err)
	}
	tc, _ := For[text]()
	if _, err := tc.EncodeSized(nil, &text{"abc"}, 4); !errors.Is(err, ErrSize) {
		t.Fatalf("EncodeSized: %v", err)
	}
}

func TestRawBytes(t *testing.T) {
	c, _ := For[[]byte]()
	var v []byte
	if err := c.Decode([]byte{1, 2}, &v); err != nil || !bytes.Equal(v, []byte{1, 2}) {
		t.Fatalf("got %v, %v", v, err)
	}
}

func TestDecodeAllocatesNothing(t *testing.T) {
	c, _ := For[flat]()
	b := make([]byte, 16)
	var v flat
	if n := testing.AllocsPerRun(100, func() { _ = c.Decode(b, &v) }); n != 0 {
		t.Fatalf("%v allocations per decode, want 0", n)
	}
	cb, _ := For[flags]()
	var f flags
	if n := testing.AllocsPerRun(100, func() { _ = cb.Decode(b[:10], &f) }); n != 0 {
		t.Fatalf("%v allocations per decode of a type with bools, want 0", n)
	}
}

func TestMain(m *testing.M) { testenv.Main(m) }

// A ReadOnly codec's decoded value keeps nothing of its input: changing
// the input afterwards changes nothing (the ring pump relies on it to
// decode records in place, in memory the producer reuses).
func TestReadOnlyKeepsNoInput(t *testing.T) {
	sevens := binary.NativeEndian.Uint64(bytes.Repeat([]byte{7}, 8))
	check := func(name string, ro bool, decode func([]byte) (func() uint64, error)) {
		t.Helper()
		if !ro {
			t.Fatalf("%s: not ReadOnly", name)
		}
		in := bytes.Repeat([]byte{7}, 16)
		got, err := decode(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		clear(in)
		if v := got(); v != sevens {
			t.Fatalf("%s: decoded %#x after its input was cleared, want %#x", name, v, sevens)
		}
	}
	cf, _ := For[flat]()
	check("flat", cf.ReadOnly(), func(b []byte) (func() uint64, error) {
		var v flat
		err := cf.Decode(b, &v)
		return func() uint64 { return v.C }, err
	})
	cp, _ := For[padded]()
	check("padded", cp.ReadOnly(), func(b []byte) (func() uint64, error) {
		var v padded
		err := cp.Decode(b[:9], &v)
		return func() uint64 { return v.B }, err
	})
	cb, _ := For[[]byte]()
	check("[]byte", cb.ReadOnly(), func(b []byte) (func() uint64, error) {
		var v []byte
		err := cb.Decode(b, &v)
		return func() uint64 { return binary.NativeEndian.Uint64(v) }, err
	})
	if ct, _ := For[text](); ct.ReadOnly() {
		t.Fatal("a BinaryUnmarshaler's codec is ReadOnly: it may keep its input")
	}
}

type inner struct{ X uint32 }

// Types with unexported fields, which only the codec reads or refuses.
type (
	//lint:ignore U1000 the unexported field is what For must refuse
	hidden struct {
		A uint8
		b uint32
	}
	hiddenDeep struct {
		A  uint8
		In struct {
			X uint32
			y uint8
		}
	}
	hiddenInArr [2]struct {
		A uint8
		b uint32
	}
	hiddenEmbed struct {
		inner
		A uint8
	}
	blankPadded struct {
		A uint8
		_ uint32
		B uint16
	}
	blankHides struct {
		A uint8
		_ struct{ x uint32 }
	}
	//lint:ignore U1000 the unexported fields are copied as memory
	hiddenDirect struct{ a, b uint32 }
)

// A padded type is decoded by encoding/binary, which cannot set an
// unexported field: For refuses it, naming the field, instead of letting
// the first Decode panic (in a pump's goroutine, that kills the process).
func TestForRefusesUnexportedPadded(t *testing.T) {
	for _, tc := range []struct {
		name  string
		for_  func() error
		field string // "" when For must accept the type
	}{
		{"field", forErr[hidden], "field b"},
		{"nested", forErr[hiddenDeep], "field In.y"},
		{"array", forErr[hiddenInArr], "field [i].b"},
		{"embedded", forErr[hiddenEmbed], "field inner"},
		{"blank", forErr[blankPadded], ""},
		{"blank struct", forErr[blankHides], ""},
		{"direct", forErr[hiddenDirect], ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.for_()
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tc.field != "" && (err == nil || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), "codec.")):
				t.Fatalf("got %v, want an error naming the type and %q", err, tc.field)
			}
		})
	}
}

// forErr is For's error, after checking that an accepted type decodes
// bytes of every value without panicking.
func forErr[T any]() error {
	c, err := For[T]()
	if err != nil {
		return err
	}
	var v T
	b := bytes.Repeat([]byte{0xa5}, max(c.Size(), 0))
	if err := c.Decode(b, &v); err != nil {
		return err
	}
	_, err = c.Encode(nil, &v)
	return err
}

type flags struct {
	N  uint16
	On bool
	Of [3]bool
	In struct {
		Ok bool
		_  [3]byte
	}
}

// A byte other than 0 or 1 is no Go bool: decoding makes it true.
func TestBoolsDecodeToGoBools(t *testing.T) {
	c, err := For[flags]()
	if err != nil {
		t.Fatal(err)
	}
	if c.Direct() {
		t.Fatal("a type with bools is Direct: callers would copy bytes that are no bools")
	}
	if got, want := c.Size(), 10; got != want {
		t.Fatalf("got size %d, want %d", got, want)
	}
	in := []byte{1, 2, 7, 0, 255, 2, 0xa5, 0xa5, 0xa5, 0xa5}
	var v flags
	if err := c.Decode(in, &v); err != nil {
		t.Fatal(err)
	}
	got := unsafe.Slice((*byte)(unsafe.Pointer(&v)), c.Size())
	want := []byte{1, 2, 1, 0, 1, 1, 1, 0xa5, 0xa5, 0xa5}
	if !bytes.Equal(got, want) {
		t.Fatalf("got memory %x, want %x", got, want)
	}
	if !v.On || v.Of != [3]bool{false, true, true} || !v.In.Ok {
		t.Fatalf("got %+v, want On, Of[1:] and In.Ok true", v)
	}
}

type touchy struct{ b []byte }

func (t touchy) MarshalBinary() ([]byte, error) { return []byte{t.b[0]}, nil }
func (t *touchy) UnmarshalBinary(b []byte) error {
	t.b = []byte{b[0]}
	return nil
}

// A type's own methods that panic on some input return ErrPanic.
func TestMarshalerPanics(t *testing.T) {
	c, err := For[touchy]()
	if err != nil {
		t.Fatal(err)
	}
	var v touchy
	if err := c.Decode(nil, &v); !errors.Is(err, ErrPanic) || !strings.Contains(err.Error(), "codec.touchy") {
		t.Errorf("decode: got %v, want ErrPanic naming the type", err)
	}
	if _, err := c.Encode(nil, &v); !errors.Is(err, ErrPanic) {
		t.Errorf("encode: got %v, want ErrPanic", err)
	}
}

func TestZeroCodec(t *testing.T) {
	var c Codec[touchy]
	var v touchy
	if err := c.Decode([]byte{1}, &v); err == nil {
		t.Error("decode with the zero Codec: got nil, want an error")
	}
	if _, err := c.Encode(nil, &v); err == nil {
		t.Error("encode with the zero Codec: got nil, want an error")
	}
}
