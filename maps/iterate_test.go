package maps_test

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/bpfchan/bpfchan/internal/testenv"
	bpfmaps "github.com/bpfchan/bpfchan/maps"
	"github.com/cilium/ebpf"
)

func TestBatch500(t *testing.T) {
	testenv.RequireBPF(t)
	for _, typ := range []ebpf.MapType{ebpf.Hash, ebpf.LRUHash, ebpf.Array} {
		t.Run(typ.String(), func(t *testing.T) {
			const n = 500
			m, err := bpfmaps.New[uint32, uint64](&ebpf.MapSpec{Type: typ, MaxEntries: n})
			if err != nil {
				t.Fatal(err)
			}
			mustClose(t, m)
			keys, vals := make([]uint32, n), make([]uint64, n)
			for i := range keys {
				keys[i], vals[i] = uint32(i), uint64(i)*1000+7
			}
			if got, err := m.BatchPut(keys, vals); err != nil || got != n {
				t.Fatalf("BatchPut = %d, %v; want %d", got, err, n)
			}
			for _, k := range []uint32{0, 1, 250, 498, 499} {
				if got, err := m.Lookup(k); err != nil || got != uint64(k)*1000+7 {
					t.Errorf("Lookup(%d) = %d, %v; want %d", k, got, err, uint64(k)*1000+7)
				}
			}
			seen := map[uint32]uint64{}
			var ierr error
			for k, v := range m.All(&ierr) {
				if _, dup := seen[k]; dup {
					t.Fatalf("key %d yielded twice", k)
				}
				seen[k] = v
			}
			if ierr != nil || len(seen) != n {
				t.Fatalf("All: %d elements, %v; want %d", len(seen), ierr, n)
			}
			for _, k := range []uint32{3, 77, 499} {
				if seen[k] != uint64(k)*1000+7 {
					t.Errorf("All[%d] = %d, want %d", k, seen[k], uint64(k)*1000+7)
				}
			}
			// A break stops cleanly and reports no error.
			count := 0
			for range m.All(&ierr) {
				count++
				if count == 10 {
					break
				}
			}
			if ierr != nil || count != 10 {
				t.Fatalf("break: %d, %v", count, ierr)
			}
			if typ == ebpf.Array {
				if _, err := m.BatchPut([]uint32{n}, []uint64{1}); !errors.Is(err, bpfmaps.ErrOutOfRange) {
					t.Fatalf("BatchPut out of range: %v, want ErrOutOfRange", err)
				}
				// BatchDelete refuses as Delete does.
				_, err := m.BatchDelete([]uint32{1, n})
				wantErr(t, err, bpfmaps.ErrOutOfRange, "batch delete", "not below 500")
				_, err = m.BatchDelete([]uint32{1})
				wantErr(t, err, errors.ErrUnsupported, "batch delete", "cannot be deleted")
				return
			}
			// Batch delete stops at the first missing key and counts.
			got, err := m.BatchDelete([]uint32{0, 1, 2, 1000, 3})
			wantErr(t, err, bpfmaps.ErrKeyNotExist, "batch delete")
			if got != 3 {
				t.Fatalf("BatchDelete = %d, want 3", got)
			}
			if _, err := m.Lookup(3); err != nil {
				t.Fatalf("key 3 after the failed delete: %v", err)
			}
			dk, dv, err := m.Drain()
			if err != nil || len(dk) != n-3 || len(dv) != n-3 {
				t.Fatalf("Drain = %d keys, %d values, %v; want %d", len(dk), len(dv), err, n-3)
			}
			for i, k := range dk {
				if dv[i] != uint64(k)*1000+7 {
					t.Fatalf("Drain: %d=%d, want %d", k, dv[i], uint64(k)*1000+7)
				}
			}
			if _, err := m.Lookup(250); !errors.Is(err, bpfmaps.ErrKeyNotExist) {
				t.Fatalf("after Drain: %v, want ErrKeyNotExist", err)
			}
			if _, err := m.BatchPut(keys, vals); err != nil {
				t.Fatal(err)
			}
			if got, err := m.Clear(); err != nil || got != n {
				t.Fatalf("Clear = %d, %v; want %d", got, err, n)
			}
			for range m.All(&ierr) {
				t.Fatal("element after Clear")
			}
		})
	}
}

// picky is a BinaryMarshaler value of 8 bytes that refuses to decode 5 and
// 7.
type picky uint64

var errPicky = errors.New("picky: 5 and 7 refused")

func (p picky) MarshalBinary() ([]byte, error) {
	return binary.LittleEndian.AppendUint64(nil, uint64(p)), nil
}

func (p *picky) UnmarshalBinary(b []byte) error {
	if *p = picky(binary.LittleEndian.Uint64(b)); *p == 5 || *p == 7 {
		return errPicky
	}
	return nil
}

// TestDrainDecodeError: each element that fails to decode is reported, on
// one line, and the others of its batch are still returned (the kernel
// deleted them all).
func TestDrainDecodeError(t *testing.T) {
	testenv.RequireBPF(t)
	m, err := bpfmaps.New[uint32, picky](&ebpf.MapSpec{Name: "picky", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 16})
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, m)
	for i := range uint32(10) {
		if err := m.Put(i, picky(i)); err != nil {
			t.Fatal(err)
		}
	}
	keys, values, err := m.Drain()
	wantErr(t, err, errPicky, "drain", `"picky"`, "05000000", "07000000")
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("got error %q, want one line", err)
	}
	for i, k := range keys {
		if values[i] != picky(k) {
			t.Errorf("key %d: value %d", k, values[i])
		}
	}
	slices.Sort(keys)
	if want := []uint32{0, 1, 2, 3, 4, 6, 8, 9}; !slices.Equal(keys, want) {
		t.Fatalf("Drain returned keys %v, want %v", keys, want)
	}
	var ierr error
	for k := range m.Keys(&ierr) {
		t.Errorf("key %d left after Drain", k)
	}
}

func TestBatchPutFull(t *testing.T) {
	testenv.RequireBPF(t)
	m, err := bpfmaps.NewHash[uint32, uint32](4)
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, m)
	n, err := m.BatchPut([]uint32{1, 2, 3, 4, 5, 6}, []uint32{1, 2, 3, 4, 5, 6})
	wantErr(t, err, bpfmaps.ErrFull, "batch put")
	if n != 4 {
		t.Fatalf("BatchPut stored %d, want 4", n)
	}
}

func TestLPMTrie(t *testing.T) {
	testenv.RequireBPF(t)
	m, err := bpfmaps.NewLPMTrie[[4]byte, uint32](16)
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, m)
	routes := []struct {
		prefix uint32
		ip     [4]byte
		hop    uint32
	}{
		{8, [4]byte{10, 0, 0, 0}, 1},
		{16, [4]byte{10, 1, 0, 0}, 2},
		{24, [4]byte{10, 1, 2, 0}, 3},
	}
	for _, r := range routes {
		if err := m.Put(bpfmaps.LPMKey[[4]byte]{Prefix: r.prefix, Data: r.ip}, r.hop); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		ip   [4]byte
		want uint32
	}{
		{[4]byte{10, 9, 9, 9}, 1},
		{[4]byte{10, 1, 9, 9}, 2},
		{[4]byte{10, 1, 2, 3}, 3},
	}
	for _, tt := range tests {
		got, err := m.Lookup(bpfmaps.LPMKey[[4]byte]{Prefix: 32, Data: tt.ip})
		if err != nil || got != tt.want {
			t.Errorf("Lookup(%v) = %d, %v; want %d", tt.ip, got, err, tt.want)
		}
	}
	if _, err := m.Lookup(bpfmaps.LPMKey[[4]byte]{Prefix: 32, Data: [4]byte{11, 0, 0, 1}}); !errors.Is(err, bpfmaps.ErrKeyNotExist) {
		t.Errorf("got %v, want ErrKeyNotExist", err)
	}
	// The trie has no batch operations: All falls back to NextKey.
	var ierr error
	count := 0
	for k, v := range m.All(&ierr) {
		count++
		if k.Prefix/8 != v {
			t.Errorf("got %v=%d", k, v)
		}
	}
	if ierr != nil || count != 3 {
		t.Fatalf("All: %d, %v; want 3", count, ierr)
	}
	_, _, err = m.Drain()
	wantErr(t, err, bpfmaps.ErrMapType, "drain", "LPMTrie map")
	if n, err := m.Clear(); err != nil || n != 3 {
		t.Fatalf("Clear = %d, %v; want 3", n, err)
	}
}

func TestLPMTrieFull(t *testing.T) {
	testenv.RequireBPF(t)
	m, err := bpfmaps.NewLPMTrie[[4]byte, uint32](2)
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, m)
	for i := range uint32(2) {
		if err := m.Put(bpfmaps.LPMKey[[4]byte]{Prefix: 16, Data: [4]byte{10, byte(i)}}, i); err != nil {
			t.Fatal(err)
		}
	}
	err = m.Put(bpfmaps.LPMKey[[4]byte]{Prefix: 16, Data: [4]byte{10, 2}}, 2)
	wantErr(t, err, bpfmaps.ErrFull, "put", "LPMTrie map")
	if strings.Contains(err.Error(), "no space left") {
		t.Errorf("got %q, want no ENOSPC wording", err)
	}
	// Replacing a present prefix still works.
	if err := m.Put(bpfmaps.LPMKey[[4]byte]{Prefix: 16, Data: [4]byte{10, 1}}, 7); err != nil {
		t.Fatal(err)
	}
}
