package maps

import (
	"testing"

	"github.com/bpfchan/bpfchan/internal/testenv"
)

// TestAllUnderChange deletes and inserts keys while a batch walk with small
// batches runs: no key is yielded twice, every key left alone is yielded
// exactly once. (A deleted key may still be yielded: its batch may have
// been read before the delete.)
func TestAllUnderChange(t *testing.T) {
	testenv.RequireBPF(t)
	const n = 512
	m, err := NewHash[uint32, uint32](2 * n)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.batch = 8
	for i := range uint32(n) {
		if err := m.Put(i, i); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[uint32]int{}
	deleted := map[uint32]bool{}
	var ierr error
	step := 0
	for k, v := range m.All(&ierr) {
		if v != k && v != k+1 {
			t.Fatalf("key %d has value %d", k, v)
		}
		seen[k]++
		// Odd keys are deleted, the rest rewritten, new keys added.
		if victim := uint32(2*step + 1); victim < n && !deleted[victim] && seen[victim] == 0 {
			if err := m.Delete(victim); err != nil {
				t.Fatal(err)
			}
			deleted[victim] = true
		}
		if err := m.Put(k, k+1); err != nil {
			t.Fatal(err)
		}
		if err := m.Put(n+uint32(step), n+uint32(step)); err != nil {
			t.Fatal(err)
		}
		step++
	}
	if ierr != nil {
		t.Fatal(ierr)
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("key %d yielded %d times, want once", k, c)
		}
	}
	if len(deleted) == 0 {
		t.Fatal("the test deleted nothing")
	}
	for k := range uint32(n) {
		if !deleted[k] && seen[k] != 1 {
			t.Errorf("untouched key %d yielded %d times, want once", k, seen[k])
		}
	}
}

// TestAllGrowsOnENOSPC walks a hash map with a batch of one element, which
// the kernel refuses with ENOSPC for buckets of several elements: the walk
// grows its buffer and still sees everything once.
func TestAllGrowsOnENOSPC(t *testing.T) {
	testenv.RequireBPF(t)
	const n = 4096
	m, err := NewHash[uint32, uint32](n)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.batch = 1
	for i := range uint32(n) {
		if err := m.Put(i, i); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[uint32]bool{}
	var ierr error
	for k := range m.Keys(&ierr) {
		if seen[k] {
			t.Fatalf("key %d twice", k)
		}
		seen[k] = true
	}
	if ierr != nil || len(seen) != n {
		t.Fatalf("got %d keys, %v; want %d", len(seen), ierr, n)
	}
}

// TestClearArrayInBatches clears arrays whose size is, and is not, a
// multiple of the batch: every element is zeroed and counted.
func TestClearArrayInBatches(t *testing.T) {
	testenv.RequireBPF(t)
	for _, size := range []uint32{16, 21} {
		m, err := NewArray[uint64](size)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		m.batch = 8
		for i := range size {
			if err := m.Put(i, uint64(i)+1); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := m.Clear(); err != nil || n != int(size) {
			t.Fatalf("Clear of %d = %d, %v; want %d", size, n, err, size)
		}
		for i := range size {
			if v, err := m.Lookup(i); err != nil || v != 0 {
				t.Fatalf("size %d: after Clear, [%d] = %d, %v; want 0", size, i, v, err)
			}
		}
	}
}

// TestDrainArrayKeepsBatches: an array refuses lookup-and-delete batches,
// which must not switch its lookups to the slow NextKey walk.
func TestDrainArrayKeepsBatches(t *testing.T) {
	testenv.RequireBPF(t)
	m, err := NewArray[uint32](4)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, _, err := m.Drain(); err == nil {
		t.Fatal("Drain of an array: got no error")
	}
	var ierr error
	for range m.All(&ierr) {
	}
	if ierr != nil || m.noBatch.Load() {
		t.Fatalf("after Drain: err %v, noBatch %v; want batches still used", ierr, m.noBatch.Load())
	}
}
