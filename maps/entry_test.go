package maps

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/producer"
	"github.com/bpfchan/bpfchan/internal/testenv"
)

// bpfFMmapable is BPF_F_MMAPABLE (include/uapi/linux/bpf.h).
const bpfFMmapable = 1 << 10

// entryKind is one way an Entry can be backed.
type entryKind struct {
	name   string
	typ    ebpf.MapType
	flags  uint32
	opts   []EntryOption
	atomic bool
}

var entryKinds = []entryKind{
	{"hash", ebpf.Hash, 0, nil, true},
	{"lru", ebpf.LRUHash, 0, nil, true},
	{"array", ebpf.Array, 0, nil, true},
	{"mmap", ebpf.Array, bpfFMmapable, nil, true},
	{"userspace", ebpf.Hash, 0, []EntryOption{userspace()}, false},
}

func newEntryMap[V any](t testing.TB, typ ebpf.MapType, flags uint32) *Map[uint32, V] {
	t.Helper()
	testenv.RequireBPF(t)
	m, err := New[uint32, V](&ebpf.MapSpec{Type: typ, Flags: flags, MaxEntries: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}

// TestEntryLab151 is the sequence of Lab 15.1: 0 → Store 100 → 100 →
// Update(+1) 101 → Update(+10) 111 → CompareAndSwap(111, 200) true →
// CompareAndSwap(111, 300) false → 200.
func TestEntryLab151(t *testing.T) {
	for _, k := range entryKinds {
		t.Run(k.name, func(t *testing.T) {
			m := newEntryMap[uint64](t, k.typ, k.flags)
			if k.typ != ebpf.Array {
				if err := m.Put(1, 0); err != nil {
					t.Fatal(err)
				}
			}
			e := m.Entry(1, k.opts...)
			if e.Atomic() != k.atomic {
				t.Fatalf("got Atomic() %v, want %v", e.Atomic(), k.atomic)
			}
			load := func(want uint64) {
				t.Helper()
				if v, err := e.Load(); err != nil || v != want {
					t.Fatalf("Load: got %d, %v; want %d", v, err, want)
				}
			}
			update := func(delta, want uint64) {
				t.Helper()
				if v, err := e.Update(func(v uint64) uint64 { return v + delta }); err != nil || v != want {
					t.Fatalf("Update(+%d): got %d, %v; want %d", delta, v, err, want)
				}
			}
			cas := func(old, new uint64, want bool) {
				t.Helper()
				if ok, err := e.CompareAndSwap(old, new); err != nil || ok != want {
					t.Fatalf("CompareAndSwap(%d, %d): got %v, %v; want %v", old, new, ok, err, want)
				}
			}
			load(0)
			if err := e.Store(100); err != nil {
				t.Fatal(err)
			}
			load(100)
			update(1, 101)
			update(10, 111)
			cas(111, 200, true)
			cas(111, 300, false)
			load(200)
			// The map agrees with the entry.
			if v, err := m.Lookup(1); err != nil || v != 200 {
				t.Fatalf("Lookup: got %d, %v; want 200", v, err)
			}
		})
	}
}

var errTooBig = errors.New("too big")

func atMost(n int64) func(int64) error {
	return func(v int64) error {
		if v > n {
			return fmt.Errorf("%d > %d: %w", v, n, errTooBig)
		}
		return nil
	}
}

// TestEntryValidator checks that every writing op runs the validator on the
// value it would write, and that a rejected value leaves the map unchanged.
func TestEntryValidator(t *testing.T) {
	for _, k := range entryKinds {
		t.Run(k.name, func(t *testing.T) {
			m := newEntryMap[int64](t, k.typ, k.flags)
			e := m.Entry(2, append([]EntryOption{WithValidator(atMost(100))}, k.opts...)...)
			if err := e.Store(50); err != nil {
				t.Fatalf("accepted Store: %v", err)
			}
			rejected := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, ErrInvalid) || !errors.Is(err, errTooBig) {
					t.Fatalf("%s: got %v, want ErrInvalid wrapping errTooBig", what, err)
				}
				if v, err := m.Lookup(2); err != nil || v != 50 {
					t.Fatalf("after rejected %s: got %d, %v; want 50 unchanged", what, v, err)
				}
			}
			rejected("Store", e.Store(101))
			_, err := e.Swap(200)
			rejected("Swap", err)
			_, err = e.Update(func(v int64) int64 { return v * 3 })
			rejected("Update", err)
			_, err = e.CompareAndSwap(50, 101)
			rejected("CompareAndSwap", err)
			_, err = Add(e, 51)
			rejected("Add", err)

			// A compare that fails reports false whatever the validator says.
			if ok, err := e.CompareAndSwap(49, 101); ok || err != nil {
				t.Fatalf("CompareAndSwap with a failing compare: got %v, %v; want false, nil", ok, err)
			}
			// Accepted values are written.
			if v, err := Add(e, 50); err != nil || v != 100 {
				t.Fatalf("accepted Add: got %d, %v; want 100", v, err)
			}
			if ok, err := e.CompareAndSwap(100, 7); !ok || err != nil {
				t.Fatalf("accepted CompareAndSwap: got %v, %v", ok, err)
			}
			if old, err := e.Swap(8); old != 7 || err != nil {
				t.Fatalf("accepted Swap: got %d, %v; want 7", old, err)
			}
			if v, err := e.Update(func(v int64) int64 { return v + 1 }); v != 9 || err != nil {
				t.Fatalf("accepted Update: got %d, %v; want 9", v, err)
			}
			if v, err := m.Lookup(2); err != nil || v != 9 {
				t.Fatalf("Lookup: got %d, %v; want 9", v, err)
			}
		})
	}
}

func TestEntryValidatorTypeMismatch(t *testing.T) {
	m := newEntryMap[uint64](t, ebpf.Hash, 0)
	defer func() {
		if r := recover(); r == nil {
			t.Fatal("no panic for a validator of the wrong type")
		}
	}()
	m.Entry(1, WithValidator(func(int32) error { return nil }))
}

func TestEntryMissingKey(t *testing.T) {
	for _, k := range entryKinds {
		if k.typ == ebpf.Array {
			continue // array keys always exist
		}
		t.Run(k.name, func(t *testing.T) {
			m := newEntryMap[uint64](t, k.typ, k.flags)
			missing := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, ErrKeyNotExist) {
					t.Fatalf("%s on a missing key: got %v, want ErrKeyNotExist", what, err)
				}
			}
			_, err := m.Entry(1, k.opts...).Load()
			missing("Load", err)
			_, err = m.Entry(1, k.opts...).CompareAndSwap(0, 5)
			missing("CompareAndSwap", err)
			_, err = m.Lookup(1)
			missing("Lookup after CompareAndSwap", err)

			if old, err := m.Entry(2, k.opts...).Swap(5); old != 0 || err != nil {
				t.Fatalf("Swap on a missing key: got %d, %v; want 0, nil", old, err)
			}
			if v, err := m.Entry(3, k.opts...).Update(func(v uint64) uint64 { return v + 7 }); v != 7 || err != nil {
				t.Fatalf("Update on a missing key: got %d, %v; want 7", v, err)
			}
			if v, err := Add(m.Entry(4, k.opts...), 9); v != 9 || err != nil {
				t.Fatalf("Add on a missing key: got %d, %v; want 9", v, err)
			}
			if err := m.Entry(5, k.opts...).Store(11); err != nil {
				t.Fatalf("Store on a missing key: %v", err)
			}
			for key, want := range map[uint32]uint64{2: 5, 3: 7, 4: 9, 5: 11} {
				if v, err := m.Lookup(key); v != want || err != nil {
					t.Errorf("key %d: got %d, %v; want %d", key, v, err, want)
				}
			}
		})
	}
}

// TestEntryBytes checks an 8-byte value that is no integer: Swap and
// CompareAndSwap work on its bytes, atomically.
func TestEntryBytes(t *testing.T) {
	type pair struct{ A, B uint32 }
	m := newEntryMap[pair](t, ebpf.Hash, 0)
	e := m.Entry(1)
	if !e.Atomic() {
		t.Fatal("an 8-byte struct value: got Atomic() false")
	}
	if old, err := e.Swap(pair{1, 2}); old != (pair{}) || err != nil {
		t.Fatalf("Swap: got %v, %v", old, err)
	}
	if ok, err := e.CompareAndSwap(pair{1, 3}, pair{5, 6}); ok || err != nil {
		t.Fatalf("CompareAndSwap, second half differs: got %v, %v; want false", ok, err)
	}
	if ok, err := e.CompareAndSwap(pair{1, 2}, pair{5, 6}); !ok || err != nil {
		t.Fatalf("CompareAndSwap: got %v, %v; want true", ok, err)
	}
	if v, err := e.Update(func(p pair) pair { return pair{p.B, p.A} }); v != (pair{6, 5}) || err != nil {
		t.Fatalf("Update: got %v, %v", v, err)
	}
}

// TestEntryAtomic lists when an Entry is kernel-atomic.
func TestEntryAtomic(t *testing.T) {
	testenv.RequireBPF(t)
	type big struct{ A, B uint64 }
	cases := []struct {
		name string
		make func() (atomic bool, closer func() error, err error)
		want bool
	}{
		{"hash uint32", func() (bool, func() error, error) {
			m, err := NewHash[uint32, uint32](1)
			if err != nil {
				return false, nil, err
			}
			return m.Entry(0).Atomic(), m.Close, nil
		}, true},
		{"lru [8]byte key int64", func() (bool, func() error, error) {
			m, err := NewLRUHash[[8]byte, int64](1)
			if err != nil {
				return false, nil, err
			}
			return m.Entry([8]byte{}).Atomic(), m.Close, nil
		}, true},
		{"hash uint16", func() (bool, func() error, error) {
			m, err := NewHash[uint32, uint16](1)
			if err != nil {
				return false, nil, err
			}
			return m.Entry(0).Atomic(), m.Close, nil
		}, false},
		{"hash 16-byte struct", func() (bool, func() error, error) {
			m, err := NewHash[uint32, big](1)
			if err != nil {
				return false, nil, err
			}
			return m.Entry(0).Atomic(), m.Close, nil
		}, false},
		{"lpm trie", func() (bool, func() error, error) {
			m, err := New[[8]byte, uint64](&ebpf.MapSpec{Type: ebpf.LPMTrie, Flags: 1, MaxEntries: 1})
			if err != nil {
				return false, nil, err
			}
			return m.Entry([8]byte{}).Atomic(), m.Close, nil
		}, false},
	}
	for _, c := range cases {
		got, closer, err := c.make()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if err := closer(); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%s: got Atomic() %v, want %v", c.name, got, c.want)
		}
	}
}

// TestEntryFallbackOtherSize runs the userspace path on a value that is not
// 4 or 8 bytes.
func TestEntryFallbackOtherSize(t *testing.T) {
	type big struct{ A, B uint64 }
	m := newEntryMap[big](t, ebpf.Hash, 0)
	e := m.Entry(1)
	if v, err := e.Update(func(b big) big { b.A++; b.B += 2; return b }); v != (big{1, 2}) || err != nil {
		t.Fatalf("Update: got %v, %v", v, err)
	}
	if ok, err := e.CompareAndSwap(big{1, 2}, big{3, 4}); !ok || err != nil {
		t.Fatalf("CompareAndSwap: got %v, %v", ok, err)
	}
	if old, err := e.Swap(big{5, 6}); old != (big{3, 4}) || err != nil {
		t.Fatalf("Swap: got %v, %v", old, err)
	}
	small := newEntryMap[uint16](t, ebpf.Hash, 0)
	if v, err := Add(small.Entry(1), 65535); v != 65535 || err != nil {
		t.Fatalf("Add: got %d, %v", v, err)
	}
	if v, err := Add(small.Entry(1), 2); v != 1 || err != nil {
		t.Fatalf("Add wrapping: got %d, %v; want 1", v, err)
	}
}

func TestEntryErrors(t *testing.T) {
	arr := newEntryMap[uint64](t, ebpf.Array, 0)
	for _, opts := range [][]EntryOption{nil, {userspace()}} {
		if _, err := Add(arr.Entry(8, opts...), 1); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("Add out of range: got %v, want ErrOutOfRange", err)
		}
	}
	full, err := NewHash[uint32, uint64](1)
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	if _, err := Add(full.Entry(1), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := Add(full.Entry(2), 1); !errors.Is(err, ErrFull) {
		t.Errorf("Add to a full hash: got %v, want ErrFull", err)
	}
}

// TestEntryClosed checks ops after Map.Close, with the helper built before
// Close and with no helper built at all, and that Close unloads the helper
// (the package's TestMain fails on a leaked descriptor).
func TestEntryClosed(t *testing.T) {
	for _, k := range entryKinds {
		for _, warm := range []bool{true, false} {
			testenv.RequireBPF(t)
			m, err := New[uint32, uint64](&ebpf.MapSpec{Type: k.typ, Flags: k.flags, MaxEntries: 8})
			if err != nil {
				t.Fatal(err)
			}
			e := m.Entry(1, k.opts...)
			if warm {
				if _, err := Add(e, 1); err != nil {
					t.Fatal(err)
				}
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := Add(e, 1); !errors.Is(err, ErrClosed) {
				t.Errorf("%s (helper built %v): Add after Close: got %v, want ErrClosed", k.name, warm, err)
			}
			if _, err := e.Load(); !errors.Is(err, ErrClosed) {
				t.Errorf("%s (helper built %v): Load after Close: got %v, want ErrClosed", k.name, warm, err)
			}
		}
	}
}

// TestEntryAtomicAgainstBPF is the proof of atomicity: 4 goroutines do
// Update(+1) 20,000 times each while a BPF program fetch-adds 1 to the same
// value 100,000 times. Nothing may be lost on the kernel-atomic paths. The
// userspace fallback runs the same load and reports what it lost.
func TestEntryAtomicAgainstBPF(t *testing.T) {
	const (
		workers  = 4
		perWork  = 20000
		inKernel = 100000
		want     = workers*perWork + inKernel
	)
	for _, k := range []entryKind{entryKinds[0], entryKinds[3], entryKinds[4]} {
		t.Run(k.name, func(t *testing.T) {
			m := newEntryMap[uint64](t, k.typ, k.flags)
			p, err := producer.NewHashAdd(m.Map(), 3, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			e := m.Entry(3, k.opts...)
			if e.Atomic() != k.atomic {
				t.Fatalf("got Atomic() %v, want %v", e.Atomic(), k.atomic)
			}
			rep, err := p.Race(producer.Race{
				Kernel:    inKernel,
				Workers:   workers,
				PerWorker: perWork,
				Op: func(int) error {
					_, err := e.Update(func(v uint64) uint64 { return v + 1 })
					return err
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Lookup(3)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("kernel adds made while each worker ran: %v (of %d)", rep.Overlap, inKernel)
			if !k.atomic {
				t.Logf("userspace fallback: got %d, want %d: lost %d of %d updates (%.1f%%)",
					got, want, want-got, want, 100*float64(want-got)/want)
				return
			}
			if got != want {
				t.Fatalf("got %d, want %d: lost %d updates", got, want, want-got)
			}
		})
	}
}

func TestPerCPUEntry(t *testing.T) {
	testenv.RequireBPF(t)
	m, err := NewPerCPUHash[uint32, uint64](4)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	e := m.Entry(1)
	if e.Atomic() {
		t.Fatal("a per-CPU entry claims atomicity")
	}
	if _, err := e.Load(); !errors.Is(err, ErrKeyNotExist) {
		t.Fatalf("Load missing: got %v, want ErrKeyNotExist", err)
	}
	vals := make([]uint64, m.CPUs())
	var want uint64
	for i := range vals {
		vals[i] = uint64(i + 1)
		want += vals[i]
	}
	if err := e.Store(vals); err != nil {
		t.Fatal(err)
	}
	got, err := e.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != m.CPUs() || got[len(got)-1] != uint64(len(got)) {
		t.Fatalf("Load: got %v, want %v", got, vals)
	}
	if sum, err := LoadSum(e); sum != want || err != nil {
		t.Fatalf("LoadSum: got %d, %v; want %d", sum, err, want)
	}
}

// TestEntryAddMmapNoAlloc: the zero-syscall path allocates nothing.
func TestEntryAddMmapNoAlloc(t *testing.T) {
	m := newEntryMap[uint64](t, ebpf.Array, bpfFMmapable)
	e := m.Entry(1)
	if _, err := Add(e, 1); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = Add(e, 1) }); n != 0 {
		t.Fatalf("got %v allocations per Add, want 0", n)
	}
}

// TestEntryWord32 runs the 4-byte paths with a signed value.
func TestEntryWord32(t *testing.T) {
	for _, k := range entryKinds {
		t.Run(k.name, func(t *testing.T) {
			m := newEntryMap[int32](t, k.typ, k.flags)
			e := m.Entry(1, k.opts...)
			if v, err := Add(e, -1); v != -1 || err != nil {
				t.Fatalf("Add(-1): got %d, %v; want -1", v, err)
			}
			if v, err := Add(e, 3); v != 2 || err != nil {
				t.Fatalf("Add(3): got %d, %v; want 2", v, err)
			}
			if ok, err := e.CompareAndSwap(2, -7); !ok || err != nil {
				t.Fatalf("CompareAndSwap(2, -7): got %v, %v", ok, err)
			}
			if old, err := e.Swap(-8); old != -7 || err != nil {
				t.Fatalf("Swap(-8): got %d, %v; want -7", old, err)
			}
			if v, err := m.Lookup(1); v != -8 || err != nil {
				t.Fatalf("Lookup: got %d, %v; want -8", v, err)
			}
		})
	}
}

// TestEntryOneHelperPerMap: entries of one map share the helper, which is
// built on the first op that needs it, not before.
func TestEntryOneHelperPerMap(t *testing.T) {
	m := newEntryMap[uint64](t, ebpf.Hash, 0)
	e1, e2 := m.Entry(1), m.Entry(2)
	if m.helper.c != nil {
		t.Fatal("helper built by Map.Entry, before any op")
	}
	if _, err := Add(e1, 1); err != nil {
		t.Fatal(err)
	}
	h := m.helper.c.(*atomicHolder).h.Load()
	if _, err := Add(e2, 1); err != nil {
		t.Fatal(err)
	}
	if h2 := m.helper.c.(*atomicHolder).h.Load(); h == nil || h2 != h {
		t.Fatalf("got helpers %p and %p, want one", h, h2)
	}
}

// beU64 is an integer stored big-endian by its own codec: its bytes in the
// map are not a native-order integer, so the kernel must not add to them.
type beU64 uint64

func (v beU64) MarshalBinary() ([]byte, error) {
	return binary.BigEndian.AppendUint64(nil, uint64(v)), nil
}

func (v *beU64) UnmarshalBinary(b []byte) error {
	if len(b) != 8 {
		return fmt.Errorf("beU64: %d bytes, want 8", len(b))
	}
	*v = beU64(binary.BigEndian.Uint64(b))
	return nil
}

// TestEntryAddEncodedInteger: Add on an integer with its own (big-endian)
// encoding carries across a byte (255+1) and stays atomic.
func TestEntryAddEncodedInteger(t *testing.T) {
	for _, k := range entryKinds {
		t.Run(k.name, func(t *testing.T) {
			testenv.RequireBPF(t)
			m, err := New[uint32, beU64](&ebpf.MapSpec{Type: k.typ, Flags: k.flags, ValueSize: 8, MaxEntries: 8})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			e := m.Entry(1, k.opts...)
			if e.Atomic() != k.atomic {
				t.Fatalf("got Atomic() %v, want %v", e.Atomic(), k.atomic)
			}
			for _, step := range []struct{ delta, want beU64 }{{1, 1}, {254, 255}, {1, 256}} {
				if v, err := Add(e, step.delta); v != step.want || err != nil {
					t.Fatalf("Add(%d): got %d, %v; want %d", step.delta, v, err, step.want)
				}
			}
			if v, err := e.Load(); v != 256 || err != nil {
				t.Fatalf("Load: got %d, %v; want 256", v, err)
			}
			var raw [8]byte
			if err := m.Map().Lookup(uint32(1), &raw); err != nil {
				t.Fatal(err)
			}
			if got := binary.BigEndian.Uint64(raw[:]); got != 256 {
				t.Fatalf("map bytes %x: got %d big-endian, want 256", raw, got)
			}
		})
	}
}

// Map flags (include/uapi/linux/bpf.h).
const (
	bpfFRdonly     = 1 << 3
	bpfFWronly     = 1 << 4
	bpfFRdonlyProg = 1 << 7
)

// TestEntryReadOnlyToPrograms: no program may write a BPF_F_RDONLY_PROG
// map, the helper included, so its Entries take the userspace path (and
// work) instead of claiming atomicity and failing every op.
func TestEntryReadOnlyToPrograms(t *testing.T) {
	for _, typ := range []ebpf.MapType{ebpf.Hash, ebpf.Array} {
		t.Run(typ.String(), func(t *testing.T) {
			m := newEntryMap[uint64](t, typ, bpfFRdonlyProg)
			e := m.Entry(1)
			if e.Atomic() {
				t.Fatal("got Atomic() true on a map programs may not write")
			}
			if err := e.Store(5); err != nil {
				t.Fatalf("Store: %v", err)
			}
			if v, err := Add(e, 2); v != 7 || err != nil {
				t.Fatalf("Add: got %d, %v; want 7", v, err)
			}
			if v, err := e.Load(); v != 7 || err != nil {
				t.Fatalf("Load: got %d, %v; want 7", v, err)
			}
		})
	}
}

// TestEntryUserspaceFlags: on a map read-only (BPF_F_RDONLY) or write-only
// (BPF_F_WRONLY) to userspace, an Entry refuses the forbidden direction with
// EPERM, as the map syscalls do, on every path.
func TestEntryUserspaceFlags(t *testing.T) {
	type op struct {
		name   string
		reads  bool
		writes bool
		do     func(e *Entry[uint32, uint64]) error
	}
	ops := []op{
		{"Load", true, false, func(e *Entry[uint32, uint64]) error { _, err := e.Load(); return err }},
		{"Store", false, true, func(e *Entry[uint32, uint64]) error { return e.Store(9) }},
		{"Swap", true, true, func(e *Entry[uint32, uint64]) error { _, err := e.Swap(9); return err }},
		{"Update", true, true, func(e *Entry[uint32, uint64]) error {
			_, err := e.Update(func(v uint64) uint64 { return v + 1 })
			return err
		}},
		{"CompareAndSwap", true, true, func(e *Entry[uint32, uint64]) error { _, err := e.CompareAndSwap(5, 9); return err }},
		{"Add", true, true, func(e *Entry[uint32, uint64]) error { _, err := Add(e, 1); return err }},
	}
	for _, k := range entryKinds {
		for _, flag := range []struct {
			name   string
			flags  uint32
			denied func(op) bool
		}{
			{"rdonly", bpfFRdonly, func(o op) bool { return o.writes }},
			{"wronly", bpfFWronly, func(o op) bool { return o.reads }},
		} {
			t.Run(k.name+"/"+flag.name, func(t *testing.T) {
				m := newEntryMap[uint64](t, k.typ, k.flags|flag.flags)
				// The value is 5, put there by a BPF program (userspace may
				// not write an rdonly map).
				p, err := producer.NewHashAdd(m.Map(), 1, 5)
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				if err := p.Run(1); err != nil {
					t.Fatal(err)
				}
				e := m.Entry(1, k.opts...)
				if e.Atomic() != k.atomic {
					t.Fatalf("got Atomic() %v, want %v", e.Atomic(), k.atomic)
				}
				for _, o := range ops {
					err := o.do(e)
					if flag.denied(o) {
						if !errors.Is(err, unix.EPERM) {
							t.Errorf("%s: got %v, want EPERM", o.name, err)
						}
					} else if err != nil {
						t.Errorf("%s: %v", o.name, err)
					}
				}
				if flag.flags == bpfFRdonly {
					if v, err := e.Load(); v != 5 || err != nil {
						t.Errorf("after the refused writes: got %d, %v; want 5", v, err)
					}
				}
			})
		}
	}
}

// TestEntryFallbackConcurrentCreate: two wrappers of one kernel map (their
// Entries share no lock) Swap into the same missing key at once. The
// fallback creates with BPF_NOEXIST, so exactly one of them finds the key
// missing and the other gets the first one's value back.
func TestEntryFallbackConcurrentCreate(t *testing.T) {
	const rounds = 2000
	base := newEntryMap[uint64](t, ebpf.Hash, 0)
	var ws [2]*Map[uint32, uint64]
	for i := range ws {
		w, err := Open[uint32, uint64](base.Map())
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		ws[i] = w
	}
	for r := range uint32(rounds) {
		key := r % 8
		if r >= 8 {
			if err := base.Delete(key); err != nil {
				t.Fatal(err)
			}
		}
		var olds [2]uint64
		var errs [2]error
		gate := make(chan struct{})
		var wg sync.WaitGroup
		for i, w := range ws {
			e := w.Entry(key, userspace())
			wg.Go(func() {
				<-gate
				olds[i], errs[i] = e.Swap(uint64(i + 1))
			})
		}
		close(gate)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		got, err := base.Lookup(key)
		if err != nil {
			t.Fatal(err)
		}
		// Swaps in some order: the first found nothing, the second the
		// first's value, and the map holds the second's.
		if !(olds == [2]uint64{0, 1} && got == 2) && !(olds == [2]uint64{2, 0} && got == 1) {
			t.Fatalf("round %d: Swaps returned %v and the map holds %d: not one swap after the other", r, olds, got)
		}
	}
}

// TestEntryFallbackNested: a function given to Update, and a validator,
// may use other Entries of the same Map: the fallback runs them with no lock
// held (a striped lock held around them deadlocked when the other key
// shared its stripe).
func TestEntryFallbackNested(t *testing.T) {
	testenv.RequireBPF(t)
	m, err := NewHash[uint32, uint64](256)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	outer := m.Entry(0, userspace(), WithValidator(func(v uint64) error {
		_, err := m.Entry(uint32(v), userspace()).Swap(v)
		return err
	}))
	for k := uint64(1); k < 200; k++ {
		v, err := outer.Update(func(v uint64) uint64 {
			if err := m.Entry(uint32(k), userspace()).Store(k); err != nil {
				t.Error(err)
			}
			return k
		})
		if v != k || err != nil {
			t.Fatalf("Update: got %d, %v; want %d", v, err, k)
		}
	}
	for k := uint32(0); k < 200; k++ {
		want := uint64(k)
		if k == 0 {
			want = 199
		}
		if v, err := m.Lookup(k); v != want || err != nil {
			t.Fatalf("key %d: got %d, %v; want %d", k, v, err, want)
		}
	}
}

// TestEntryConcurrentCreate: goroutines doing Add and Update and a BPF
// program adding all start together on a missing key, each possibly
// creating it. Creation never clobbers another creator (every side creates
// with BPF_NOEXIST), so no update is lost.
func TestEntryConcurrentCreate(t *testing.T) {
	const (
		keys    = 64
		workers = 4 // half Add, half Update
		perWork = 3
		inBPF   = 3
		want    = workers*perWork + inBPF
	)
	for _, typ := range []ebpf.MapType{ebpf.Hash, ebpf.LRUHash} {
		t.Run(typ.String(), func(t *testing.T) {
			testenv.RequireBPF(t)
			m, err := New[uint32, uint64](&ebpf.MapSpec{Type: typ, MaxEntries: 2 * keys})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			for key := range uint32(keys) {
				p, err := producer.NewHashAdd(m.Map(), key, 1)
				if err != nil {
					t.Fatal(err)
				}
				gate := make(chan struct{})
				errs := make(chan error, workers+1)
				var wg sync.WaitGroup
				wg.Go(func() {
					<-gate
					errs <- p.Run(inBPF)
				})
				for w := range workers {
					e := m.Entry(key)
					wg.Go(func() {
						<-gate
						for range perWork {
							var err error
							if w%2 == 0 {
								_, err = Add(e, 1)
							} else {
								_, err = e.Update(func(v uint64) uint64 { return v + 1 })
							}
							if err != nil {
								errs <- err
								return
							}
						}
						errs <- nil
					})
				}
				close(gate)
				wg.Wait()
				close(errs)
				if err := p.Close(); err != nil {
					t.Fatal(err)
				}
				for err := range errs {
					if err != nil {
						t.Fatal(err)
					}
				}
				if got, err := m.Lookup(key); got != want || err != nil {
					t.Fatalf("key %d: got %d, %v; want %d", key, got, err, want)
				}
			}
		})
	}
}

// TestEntryHelperRetry: a helper that could not be loaded for a passing
// reason (here: no descriptor left) is tried again by the next op, while a
// final reason is kept.
func TestEntryHelperRetry(t *testing.T) {
	m := newEntryMap[uint64](t, ebpf.Hash, 0)
	e := m.Entry(1)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	// The lowest free descriptor number becomes the limit: no new one.
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	low := lim
	low.Cur = uint64(f.Fd())
	f.Close()
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	_, err = Add(e, 1)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("Add with no descriptor left: got %v, want EMFILE", err)
	}
	if v, err := Add(e, 1); v != 1 || err != nil {
		t.Fatalf("Add once descriptors are back: got %d, %v; want 1", v, err)
	}

	// A verifier rejection is final (a program without an exit here).
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SocketFilter, License: "MIT",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0)}})
	if err == nil {
		p.Close()
		t.Fatal("the verifier accepted a program without an exit")
	}
	if !finalLoadErr(err) {
		t.Fatalf("a verifier rejection (%v) is not taken as final", err)
	}

	// A final failure is kept: the Map is closed.
	m2 := newEntryMap[uint64](t, ebpf.Hash, 0)
	e2 := m2.Entry(1)
	if err := m2.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := Add(e2, 1); !errors.Is(err, ErrClosed) {
			t.Fatalf("Add after Close: got %v, want ErrClosed", err)
		}
	}
}
