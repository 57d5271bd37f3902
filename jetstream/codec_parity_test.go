package jetstream

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	core "github.com/bpfchan/bpfchan/internal/codec"
)

// The shapes of the parity test, one or more per kind of codec and per
// rule the core's codec documents.
type (
	pDirect struct {
		A uint32
		F float32
		C uint64
	}
	pHiddenDirect struct { // unexported fields, no padding: copied as memory
		a uint32
		b uint32
	}
	pBools struct {
		N  uint16
		On bool
		Of [3]bool
		In struct {
			Ok bool
			_  [3]byte
		}
	}
	pPadded struct {
		A uint8
		B uint64
		C int16
	}
	pBlank struct {
		A uint8
		_ uint32
		B uint16
	}
	pPaddedBools struct {
		A  uint8
		On bool
		B  uint32
	}
	pHidden struct { // padding and an unexported field: refused
		A uint8
		b uint64
	}
	pHiddenDeep struct {
		A  uint8
		In [2]struct {
			X uint16
			y uint8
		}
	}
	pString struct{ S string }
	pMarsh  struct{ b byte } // MarshalBinary panics on 0, UnmarshalBinary on no byte
	pRefuse struct{ b byte } // methods that return errors
)

func (v pMarsh) MarshalBinary() ([]byte, error) {
	if v.b == 0 {
		panic("pMarsh: zero")
	}
	return []byte{v.b}, nil
}

func (v *pMarsh) UnmarshalBinary(b []byte) error { v.b = b[0]; return nil }

func (v pRefuse) MarshalBinary() ([]byte, error) {
	if v.b == 0 {
		return nil, errors.New("pRefuse: zero")
	}
	return []byte{v.b}, nil
}

func (v *pRefuse) UnmarshalBinary(b []byte) error {
	if len(b) != 1 {
		return errors.New("pRefuse: want one byte")
	}
	v.b = b[0]
	return nil
}

// TestCodecParity: this module's codec (a copy, which cannot follow the
// core's internal/codec by itself) behaves as the core's on every shape:
// the same types refused, the same sizes, and for any bytes the same
// decode errors (ErrSize, ErrPanic) and the same values (compared through
// their encodings: bools made 0 or 1, padding skipped), and for values
// the same encodings and encode errors.
func TestCodecParity(t *testing.T) {
	t.Run("uint32", func(t *testing.T) { parity[uint32](t, nil) })
	t.Run("direct", func(t *testing.T) { parity[pDirect](t, nil) })
	t.Run("direct with unexported fields", func(t *testing.T) { parity(t, []pHiddenDirect{{a: 1, b: 2}}) })
	t.Run("bools", func(t *testing.T) { parity[pBools](t, nil) })
	t.Run("bool array", func(t *testing.T) { parity[[5]bool](t, nil) })
	t.Run("padded", func(t *testing.T) { parity[pPadded](t, nil) })
	t.Run("padded with a blank field", func(t *testing.T) { parity[pBlank](t, nil) })
	t.Run("padded with bools", func(t *testing.T) { parity[pPaddedBools](t, nil) })
	t.Run("padded with an unexported field", func(t *testing.T) { parity(t, []pHidden{{b: 1}}) })
	t.Run("padded with an unexported field deep", func(t *testing.T) { parity[pHiddenDeep](t, nil) })
	t.Run("no fixed size", func(t *testing.T) { parity[pString](t, nil) })
	t.Run("pointer", func(t *testing.T) { parity[*uint32](t, nil) })
	t.Run("bytes", func(t *testing.T) { parity[[]byte](t, [][]byte{nil, {}, {1, 2, 3}}) })
	t.Run("marshaler that panics", func(t *testing.T) { parity[pMarsh](t, []pMarsh{{0}, {7}}) })
	t.Run("marshaler that refuses", func(t *testing.T) { parity[pRefuse](t, []pRefuse{{0}, {7}}) })
}

// parity compares the two codecs of T on construction, on decoding many
// byte strings (of the size of T, around it, and empty), and on encoding
// those decoded values and the given ones.
func parity[T any](t *testing.T, values []T) {
	t.Helper()
	mc, merr := codecFor[T]()
	cc, cerr := core.For[T]()
	if (merr != nil) != (cerr != nil) {
		t.Fatalf("construction: got %v, the core's codec %v", merr, cerr)
	}
	if merr != nil {
		if !errors.Is(merr, ErrOption) {
			t.Errorf("construction: got %v, want an error matching ErrOption", merr)
		}
		// The core names the field; so must this module.
		if i := strings.Index(cerr.Error(), "field "); i >= 0 {
			f := strings.Fields(cerr.Error()[i:])[1]
			if !strings.Contains(merr.Error(), "field "+f) {
				t.Errorf("construction: got %q, want it to name field %s as the core does (%q)", merr, f, cerr)
			}
		}
		return
	}
	if mc.size != cc.Size() {
		t.Fatalf("got size %d, the core's codec %d", mc.size, cc.Size())
	}
	for i, b := range inputs(mc.size) {
		var mv, cv T
		merr, cerr := mc.decode(b, &mv), cc.Decode(b, &cv)
		if !sameErr(merr, cerr) {
			t.Fatalf("decode input %d (%x): got %v, the core's codec %v", i, b, merr, cerr)
		}
		if merr != nil {
			continue
		}
		me, merr := mc.encode(nil, &mv)
		ce, cerr := cc.Encode(nil, &cv)
		if !sameErr(merr, cerr) || !bytes.Equal(me, ce) {
			t.Fatalf("decode input %d (%x), then encode: got %x, %v; the core's codec %x, %v", i, b, me, merr, ce, cerr)
		}
		values = append(values, mv)
	}
	for i, v := range values {
		me, merr := mc.encode([]byte{9}, &v)
		ce, cerr := cc.Encode([]byte{9}, &v)
		if !sameErr(merr, cerr) || !bytes.Equal(me, ce) {
			t.Fatalf("encode value %d (%+v): got %x, %v; the core's codec %x, %v", i, v, me, merr, ce, cerr)
		}
	}
}

// sameErr reports whether a and b are both nil, or both errors matching
// the same of the shared sentinels (or neither).
func sameErr(a, b error) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	for _, s := range []error{ErrSize, ErrPanic} {
		if errors.Is(a, s) != errors.Is(b, s) {
			return false
		}
	}
	return true
}

// inputs returns byte strings to decode: for a fixed size n, n bytes of
// several patterns and random ones, and n-1, n+1 and 0 bytes; for a size
// known per value (-1), strings of 0 to 3 bytes.
func inputs(n int) [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	if n < 0 {
		return [][]byte{nil, {}, {0}, {7}, {1, 2}, {0xff, 0, 3}}
	}
	out := [][]byte{nil, make([]byte, max(n-1, 0)), make([]byte, n+1)}
	for _, fill := range []byte{0, 1, 2, 0x80, 0xa5, 0xff} {
		out = append(out, bytes.Repeat([]byte{fill}, n))
	}
	for range 64 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		out = append(out, b)
	}
	return out
}

// TestGuard: a panic of a user callback is an error matching ErrPanic, on
// one line whatever the panic value holds.
func TestGuard(t *testing.T) {
	err := guard("decode record", func() error { panic("two\nlines") })
	if !errors.Is(err, ErrPanic) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "two lines") {
		t.Errorf("got %q, want one line matching ErrPanic with the panic value", err)
	}
	if err := guard("decode record", func() error { return nil }); err != nil {
		t.Errorf("got %v without a panic, want nil", err)
	}
}
