package bpfcall

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// TestLookupBatch sweeps maps with a cursor until ENOENT and checks that
// every entry came exactly once, with its value, and that the counts the
// kernel returned (the one that came with ENOENT included) add up.
func TestLookupBatch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		typ    ebpf.MapType
		n      uint32 // entries
		batch  uint32
		counts []uint32 // the kernel's count per call, when it is deterministic
	}{
		{"array in batches of 7", ebpf.Array, 10, 7, []uint32{7, 3}},
		{"array in one batch", ebpf.Array, 10, 16, []uint32{10}},
		{"hash in one batch", ebpf.Hash, 100, 128, []uint32{100}},
		{"hash in batches of 16", ebpf.Hash, 100, 16, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMap(t, tc.typ, 4, 8, tc.n)
			for k := range tc.n {
				if err := m.Put(k, uint64(k)*10); err != nil {
					t.Fatal(err)
				}
			}
			cursor := make([]byte, 4)
			keys, vals := make([]byte, 4*tc.batch), make([]byte, 8*tc.batch)
			var got []uint32
			var counts []uint32
			for first := true; ; first = false {
				in := cursor
				if first {
					in = nil
				}
				n, e := LookupBatch(m.FD(), in, cursor, keys, vals, tc.batch, 0)
				if e != 0 && e != unix.ENOENT {
					t.Fatalf("batch after %d entries: got %v, want success or ENOENT", len(got), e)
				}
				if n > tc.batch {
					t.Fatalf("got count %d, want at most %d", n, tc.batch)
				}
				counts = append(counts, n)
				for i := range n {
					k := binary.NativeEndian.Uint32(keys[4*i:])
					if v := binary.NativeEndian.Uint64(vals[8*i:]); v != uint64(k)*10 {
						t.Fatalf("key %d: got value %d, want %d", k, v, uint64(k)*10)
					}
					got = append(got, k)
				}
				if e == unix.ENOENT {
					break
				}
				if len(counts) > int(tc.n)+1 {
					t.Fatalf("sweep does not end: counts %v", counts)
				}
			}
			if tc.counts != nil && !slices.Equal(counts, tc.counts) {
				t.Errorf("got counts %v, want %v", counts, tc.counts)
			}
			slices.Sort(got)
			want := make([]uint32, tc.n)
			for i := range want {
				want[i] = uint32(i)
			}
			if !slices.Equal(got, want) {
				t.Errorf("got keys %v, want 0..%d once each", got, tc.n-1)
			}
		})
	}
}

// TestLookupBatchRefused: a queue has no batch operations.
func TestLookupBatchRefused(t *testing.T) {
	m := newMap(t, ebpf.Queue, 0, 8, 4)
	vals := make([]byte, 8*4)
	if n, e := LookupBatch(m.FD(), nil, make([]byte, 4), nil, vals, 4, 0); e != ENOTSUPP || n != 0 {
		t.Errorf("got %d, %v; want 0, ENOTSUPP", n, e)
	}
}
