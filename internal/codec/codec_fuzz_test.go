package codec

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

// The shapes the fuzz targets decode into, one per kind of codec.
type (
	// direct: no padding, a float whose every bit pattern must survive.
	fzDirect struct {
		A uint32
		F float32
		C uint64
	}
	// packed: padding after A and C, so encoding/binary.
	fzPacked struct {
		A uint8
		B uint64
		C int16
		D [3]uint8
	}
	// packed with a blank field, whose bytes decode to nothing.
	fzBlank struct {
		A uint8
		_ uint32
		B uint16
	}
	// nested: arrays of padded structs holding bools, a blank field, and
	// a direct struct inside.
	fzNested struct {
		A  uint8
		In [2]struct {
			X  uint16
			On bool
		}
		_ [1]byte
		T flat
	}
	// msg: a BinaryUnmarshaler that refuses some input.
	msg struct {
		Kind uint8
		Body string
	}
)

func (m msg) MarshalBinary() ([]byte, error) { return append([]byte{m.Kind}, m.Body...), nil }

func (m *msg) UnmarshalBinary(b []byte) error {
	if len(b) == 0 {
		return errors.New("empty message")
	}
	m.Kind, m.Body = b[0], string(b[1:])
	return nil
}

func eq[T comparable](a, b T) bool { return a == b }

// fuzzCodec is what every shape must do with any bytes b: Decode does not
// panic; for a fixed-size T it refuses a wrong length with ErrSize and
// accepts the exact one; a decoded v encodes (Encode and EncodeSized) to
// Size bytes that decode to a value equal to v (decode(encode(v)) == v);
// and when exact, those are b itself (encode(decode(b)) == b).
func fuzzCodec[T any](f *testing.F, exact bool, same func(a, b T) bool, seeds ...[]byte) {
	c, err := For[T]()
	if err != nil {
		f.Fatal(err)
	}
	n := max(c.Size(), 4)
	for _, s := range append(seeds, nil, []byte{0}, make([]byte, n-1), make([]byte, n), make([]byte, n+1),
		bytes.Repeat([]byte{0xff}, n), bytes.Repeat([]byte{2}, n), bytes.Repeat([]byte{0x80}, n)) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v T
		err := c.Decode(b, &v)
		if c.Size() >= 0 && len(b) != c.Size() {
			if !errors.Is(err, ErrSize) {
				t.Fatalf("decode %d bytes into %s (%d): got %v, want ErrSize", len(b), c, c.Size(), err)
			}
			return
		}
		if c.Size() >= 0 && err != nil {
			t.Fatalf("decode %d bytes into %s: got %v, want no error", len(b), c, err)
		}
		if err != nil {
			return // a type's own UnmarshalBinary may refuse its input
		}
		enc, err := c.Encode(nil, &v)
		if err != nil {
			t.Fatalf("encode %s: %v", c, err)
		}
		if c.Size() >= 0 && len(enc) != c.Size() {
			t.Fatalf("encode %s: got %d bytes, want %d", c, len(enc), c.Size())
		}
		if sized, err := c.EncodeSized([]byte{9}, &v, len(enc)); err != nil || !bytes.Equal(sized[1:], enc) {
			t.Fatalf("EncodeSized %s: got %x, %v, want 09%x", c, sized, err, enc)
		}
		if _, err := c.EncodeSized(nil, &v, len(enc)+1); !errors.Is(err, ErrSize) {
			t.Fatalf("EncodeSized %s with a wrong size: got %v, want ErrSize", c, err)
		}
		var back T
		if err := c.Decode(enc, &back); err != nil {
			t.Fatalf("decode %s of its own encoding %x: %v", c, enc, err)
		}
		if !same(back, v) {
			t.Fatalf("%s: decode(encode(v)) = %+v, want v = %+v", c, back, v)
		}
		if exact && !bytes.Equal(enc, b) {
			t.Fatalf("%s: encode(decode(b)) = %x, want b = %x", c, enc, b)
		}
	})
}

func FuzzCodecDirect(f *testing.F) {
	nan := math.Float32bits(float32(math.NaN())) | 1
	fuzzCodec(f, true, func(a, b fzDirect) bool {
		return a.A == b.A && math.Float32bits(a.F) == math.Float32bits(b.F) && a.C == b.C
	}, []byte{1, 0, 0, 0, byte(nan), byte(nan >> 8), byte(nan >> 16), byte(nan >> 24), 1, 2, 3, 4, 5, 6, 7, 8})
}

func FuzzCodecPacked(f *testing.F) { fuzzCodec(f, true, eq[fzPacked]) }

// The blank field's bytes decode to nothing and encode as zeros: not exact.
func FuzzCodecBlank(f *testing.F) { fuzzCodec(f, false, eq[fzBlank]) }

func FuzzCodecArray(f *testing.F) { fuzzCodec(f, true, eq[[5]uint16]) }

// Bools make any non-zero byte true, so the bytes do not come back exactly.
func FuzzCodecBools(f *testing.F) { fuzzCodec(f, false, eq[flags]) }

func FuzzCodecNested(f *testing.F) { fuzzCodec(f, false, eq[fzNested]) }

func FuzzCodecBytes(f *testing.F) { fuzzCodec(f, true, bytes.Equal, []byte("hello")) }

func FuzzCodecMarshaler(f *testing.F) { fuzzCodec(f, true, eq[msg], []byte("\x01hi")) }
