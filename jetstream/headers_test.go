package jetstream

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"time"
)

// appendPacked appends rec to a packed payload, as Forward packs.
func appendPacked(dst, rec []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(rec)))
	return append(dst, rec...)
}

func TestUnpack(t *testing.T) {
	three := appendPacked(appendPacked(appendPacked(nil, []byte("a")), nil), []byte("ccc"))
	for _, tc := range []struct {
		name    string
		data    []byte
		count   int
		want    []string
		wantErr bool
	}{
		{"three records", three, 3, []string{"a", "", "ccc"}, false},
		{"none", nil, 0, nil, false},
		{"count beyond the payload", three, 4, []string{"a", "", "ccc"}, true},
		{"count short of the payload", three, 2, []string{"a", ""}, true},
		{"cut inside a record", three[:len(three)-1], 3, []string{"a", ""}, true},
		{"cut inside a length", three[:2], 1, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			n, err := unpack(tc.data, tc.count, func(i int, rec []byte) {
				if i != len(got) {
					t.Errorf("got index %d, want %d", i, len(got))
				}
				got = append(got, string(rec))
			})
			if fmt.Sprint(got) != fmt.Sprint(tc.want) || (err != nil) != tc.wantErr {
				t.Errorf("got %q, %v; want %q, error %v", got, err, tc.want, tc.wantErr)
			}
			if n != len(got) && !(tc.name == "count short of the payload" && n == tc.count) {
				t.Errorf("got count %d for %d records", n, len(got))
			}
		})
	}
	if !bytes.Equal(appendPacked(nil, []byte{9}), []byte{1, 0, 0, 0, 9}) {
		t.Error("a record's length is not a little-endian uint32 before it")
	}
}

// TestBackoff: the pauses of the retry policy double from min to max and
// start again at min after a reset.
func TestBackoff(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: time.Second}
	var got []time.Duration
	for range 6 {
		got = append(got, b.next())
	}
	want := []time.Duration{100e6, 200e6, 400e6, 800e6, 1e9, 1e9}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	b.reset()
	if got := b.next(); got != b.min {
		t.Errorf("after reset: got %v, want %v", got, b.min)
	}
}
