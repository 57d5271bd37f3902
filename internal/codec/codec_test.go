package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

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
