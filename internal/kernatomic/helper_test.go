package kernatomic_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/kernatomic"
	"github.com/bpfchan/bpfchan/internal/producer"
	"github.com/bpfchan/bpfchan/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// kind is one way a map can be set up for atomic ops.
type kind struct {
	name  string
	typ   ebpf.MapType
	flags uint32
	mmap  bool // the helper must take the mmap path
}

var kinds = []kind{
	{"hash", ebpf.Hash, 0, false},
	{"lru", ebpf.LRUHash, 0, false},
	{"array", ebpf.Array, 0, false},
	{"mmap", ebpf.Array, unix.BPF_F_MMAPABLE, true},
}

func newMap(t testing.TB, typ ebpf.MapType, flags, keySize, valueSize, maxEntries uint32) *ebpf.Map {
	t.Helper()
	testenv.RequireBPF(t)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: typ, Flags: flags, KeySize: keySize, ValueSize: valueSize, MaxEntries: maxEntries})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func newHelper(t testing.TB, m *ebpf.Map) *kernatomic.Helper {
	t.Helper()
	h, err := kernatomic.New(m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Error(err)
		}
	})
	return h
}

func key32(k uint32) []byte { return binary.NativeEndian.AppendUint32(nil, k) }

func slot(t testing.TB, h *kernatomic.Helper, key []byte) *kernatomic.Slot {
	t.Helper()
	s, err := h.Key(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// lookup reads the value through the map, not through the helper.
func lookup(t testing.TB, m *ebpf.Map, key []byte) uint64 {
	t.Helper()
	b := make([]byte, m.ValueSize())
	if err := m.Lookup(key, b); err != nil {
		t.Fatal(err)
	}
	if len(b) == 4 {
		return uint64(binary.NativeEndian.Uint32(b))
	}
	return binary.NativeEndian.Uint64(b)
}

// TestOpsReturnOldValue runs every op on every kind of map and value size,
// checking both what the op reports and what the map then holds.
func TestOpsReturnOldValue(t *testing.T) {
	for _, k := range kinds {
		for _, vs := range []uint32{4, 8} {
			t.Run(fmt.Sprintf("%s/%d", k.name, vs), func(t *testing.T) {
				m := newMap(t, k.typ, k.flags, 4, vs, 4)
				h := newHelper(t, m)
				if h.Mmap() != k.mmap {
					t.Fatalf("got Mmap() %v, want %v", h.Mmap(), k.mmap)
				}
				key := key32(1)
				if k.typ != ebpf.Array {
					if err := m.Put(key, make([]byte, vs)); err != nil {
						t.Fatal(err)
					}
				}
				s := slot(t, h, key)
				step := func(what string, got, want uint64, err error) {
					t.Helper()
					if err != nil {
						t.Fatalf("%s: %v", what, err)
					}
					if got != want {
						t.Fatalf("%s: got %d, want %d", what, got, want)
					}
				}
				old, _, err := s.Add(42)
				step("add 42: old", old, 0, err)
				step("after add: map", lookup(t, m, key), 42, nil)
				old, _, err = s.Add(5)
				step("add 5: old", old, 42, err)
				old, _, err = s.Swap(9)
				step("swap 9: old", old, 47, err)
				step("after swap: map", lookup(t, m, key), 9, nil)
				prev, ok, err := s.CompareAndSwap(9, 100, false)
				step("cas 9→100 hit: prev", prev, 9, err)
				if !ok {
					t.Fatal("cas 9→100: got swapped false, want true")
				}
				prev, ok, err = s.CompareAndSwap(9, 200, false)
				step("cas 9→200 miss: prev", prev, 100, err)
				if ok {
					t.Fatal("cas 9→200: got swapped true, want false")
				}
				step("after cas: map", lookup(t, m, key), 100, nil)
				v, err := s.Load()
				step("load", v, 100, err)
				step("store 7", 0, 0, s.Store(7))
				step("after store: map", lookup(t, m, key), 7, nil)
				// Subtracting wraps at the value's width.
				old, _, err = s.Add(^uint64(7) + 1)
				step("add -7: old", old, 7, err)
				old, _, err = s.Add(^uint64(0))
				step("add -1: old", old, 0, err)
				want := ^uint64(0)
				if vs == 4 {
					want = 0xffff_ffff
				}
				step("after wrap: map", lookup(t, m, key), want, nil)
			})
		}
	}
}

func TestMissingKey(t *testing.T) {
	for _, typ := range []ebpf.MapType{ebpf.Hash, ebpf.LRUHash} {
		t.Run(typ.String(), func(t *testing.T) {
			m := newMap(t, typ, 0, 4, 8, 8)
			h := newHelper(t, m)

			s := slot(t, h, key32(1))
			if _, err := s.Load(); !errors.Is(err, kernatomic.ErrKeyNotExist) {
				t.Fatalf("load missing: got %v, want ErrKeyNotExist", err)
			}
			if _, _, err := s.CompareAndSwap(0, 5, false); !errors.Is(err, kernatomic.ErrKeyNotExist) {
				t.Fatalf("cas missing: got %v, want ErrKeyNotExist", err)
			}
			if _, err := s.Load(); !errors.Is(err, kernatomic.ErrKeyNotExist) {
				t.Fatalf("cas on a missing key created it: %v", err)
			}

			old, created, err := s.Add(3)
			if err != nil || old != 0 || !created {
				t.Fatalf("add to missing: got old %d, created %v, err %v; want 0, true, nil", old, created, err)
			}
			old, created, err = s.Add(3)
			if err != nil || old != 3 || created {
				t.Fatalf("add again: got old %d, created %v, err %v; want 3, false, nil", old, created, err)
			}

			s2 := slot(t, h, key32(2))
			old, created, err = s2.Swap(8)
			if err != nil || old != 0 || !created {
				t.Fatalf("swap into missing: got old %d, created %v, err %v; want 0, true, nil", old, created, err)
			}

			s3 := slot(t, h, key32(3))
			prev, ok, err := s3.CompareAndSwap(1, 5, true)
			if err != nil || ok || prev != 0 {
				t.Fatalf("cas-create 1→5: got prev %d, swapped %v, err %v; want 0, false, nil", prev, ok, err)
			}
			if got := lookup(t, m, key32(3)); got != 0 {
				t.Fatalf("cas-create miss: got %d in the map, want the created 0", got)
			}
			s4 := slot(t, h, key32(4))
			if _, ok, err := s4.CompareAndSwap(0, 5, true); err != nil || !ok {
				t.Fatalf("cas-create 0→5: got swapped %v, err %v", ok, err)
			}
			if got := lookup(t, m, key32(4)); got != 5 {
				t.Fatalf("cas-create hit: got %d, want 5", got)
			}
		})
	}
}

// TestNoClobber checks that creating a key never replaces a value another
// writer put there: the helper creates with BPF_NOEXIST and adds to whatever
// is there.
func TestNoClobber(t *testing.T) {
	m := newMap(t, ebpf.Hash, 0, 4, 8, 8)
	h := newHelper(t, m)
	s := slot(t, h, key32(1))
	if err := m.Put(key32(1), uint64(1000)); err != nil {
		t.Fatal(err)
	}
	if old, created, err := s.Add(1); err != nil || old != 1000 || created {
		t.Fatalf("got old %d, created %v, err %v; want 1000, false, nil", old, created, err)
	}
}

func TestFullHash(t *testing.T) {
	m := newMap(t, ebpf.Hash, 0, 4, 8, 1)
	h := newHelper(t, m)
	if _, _, err := slot(t, h, key32(1)).Add(1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := slot(t, h, key32(2)).Add(1); !errors.Is(err, kernatomic.ErrFull) {
		t.Fatalf("got %v, want ErrFull", err)
	}
}

func TestArrayIndexOutOfRange(t *testing.T) {
	for _, k := range kinds[2:] {
		m := newMap(t, k.typ, k.flags, 4, 8, 4)
		h := newHelper(t, m)
		if _, err := h.Key(key32(4)); !errors.Is(err, kernatomic.ErrKeyNotExist) {
			t.Errorf("%s: got %v, want ErrKeyNotExist", k.name, err)
		}
	}
}

// TestKeySizes covers keys that need every width of copy onto the stack,
// up to the largest that fits.
func TestKeySizes(t *testing.T) {
	for _, ks := range []uint32{1, 2, 3, 7, 13, 64, 504} {
		t.Run(fmt.Sprint(ks), func(t *testing.T) {
			m := newMap(t, ebpf.Hash, 0, ks, 8, 4)
			h := newHelper(t, m)
			a, b := make([]byte, ks), make([]byte, ks)
			for i := range a {
				a[i] = byte(i + 1)
				b[i] = byte(i + 1)
			}
			b[ks-1] ^= 0xff // differs in the last byte only
			sa, sb := slot(t, h, a), slot(t, h, b)
			if _, _, err := sa.Add(5); err != nil {
				t.Fatal(err)
			}
			if _, _, err := sb.Add(7); err != nil {
				t.Fatal(err)
			}
			if got := lookup(t, m, a); got != 5 {
				t.Fatalf("key a: got %d, want 5", got)
			}
			if got := lookup(t, m, b); got != 7 {
				t.Fatalf("key b: got %d, want 7", got)
			}
		})
	}
}

func TestUnsupported(t *testing.T) {
	for name, spec := range map[string]*ebpf.MapSpec{
		"value 2":  {Type: ebpf.Hash, KeySize: 4, ValueSize: 2, MaxEntries: 1},
		"value 16": {Type: ebpf.Hash, KeySize: 4, ValueSize: 16, MaxEntries: 1},
		"percpu":   {Type: ebpf.PerCPUHash, KeySize: 4, ValueSize: 8, MaxEntries: 1},
		"key 505":  {Type: ebpf.Hash, KeySize: 505, ValueSize: 8, MaxEntries: 1},
		"queue":    {Type: ebpf.Queue, ValueSize: 8, MaxEntries: 1},
		// No program may write it, the helper included.
		"rdonly prog": {Type: ebpf.Hash, Flags: unix.BPF_F_RDONLY_PROG, KeySize: 4, ValueSize: 8, MaxEntries: 1},
	} {
		m := newMap(t, spec.Type, spec.Flags, spec.KeySize, spec.ValueSize, spec.MaxEntries)
		if h, err := kernatomic.New(m); !errors.Is(err, kernatomic.ErrUnsupported) {
			if h != nil {
				h.Close()
			}
			t.Errorf("%s: got %v, want ErrUnsupported", name, err)
		}
	}
}

func TestClosed(t *testing.T) {
	for _, k := range kinds {
		m := newMap(t, k.typ, k.flags, 4, 8, 4)
		h, err := kernatomic.New(m)
		if err != nil {
			t.Fatal(err)
		}
		s := slot(t, h, key32(0))
		if _, _, err := s.Add(1); err != nil {
			t.Fatal(err)
		}
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
		if err := h.Close(); err != nil {
			t.Fatalf("%s: second Close: %v", k.name, err)
		}
		if _, _, err := s.Add(1); !errors.Is(err, kernatomic.ErrClosed) {
			t.Errorf("%s: add after close: got %v, want ErrClosed", k.name, err)
		}
		if _, err := s.Load(); !errors.Is(err, kernatomic.ErrClosed) {
			t.Errorf("%s: load after close: got %v, want ErrClosed", k.name, err)
		}
		// The map itself is untouched by the helper's Close.
		if got := lookup(t, m, key32(0)); got != 1 {
			t.Errorf("%s: map after close: got %d, want 1", k.name, got)
		}
	}
}

// TestAtomicAgainstBPF is the proof: userspace CAS loops and fetch-adds race
// a BPF program fetch-adding the same value; nothing may be lost.
func TestAtomicAgainstBPF(t *testing.T) {
	const (
		workers  = 4
		perWork  = 20000
		inKernel = 100000
	)
	for _, k := range kinds {
		for _, vs := range []uint32{4, 8} {
			t.Run(fmt.Sprintf("%s/%d", k.name, vs), func(t *testing.T) {
				m := newMap(t, k.typ, k.flags, 4, vs, 4)
				h := newHelper(t, m)
				p, err := producer.NewHashAdd(m, 3, 1)
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				s := slot(t, h, key32(3))
				rep, err := p.Race(producer.Race{
					Kernel:    inKernel,
					Workers:   workers,
					PerWorker: perWork,
					Op: func(w int) error {
						if w%2 == 0 {
							_, _, err := s.Add(1)
							return err
						}
						return casAdd(s, 1)
					},
				})
				if err != nil {
					t.Fatal(err)
				}
				if got, want := lookup(t, m, key32(3)), uint64(workers*perWork+inKernel); got != want {
					t.Fatalf("got %d, want %d: updates were lost", got, want)
				}
				t.Logf("kernel adds made while each worker ran: %v (of %d)", rep.Overlap, inKernel)
			})
		}
	}
}

// casAdd adds delta with a compare-and-swap loop, the way an Update(f) does.
func casAdd(s *kernatomic.Slot, delta uint64) error {
	cur, err := s.Load()
	if errors.Is(err, kernatomic.ErrKeyNotExist) {
		cur, err = 0, nil
	}
	if err != nil {
		return err
	}
	for {
		prev, ok, err := s.CompareAndSwap(cur, cur+delta, true)
		if err != nil || ok {
			return err
		}
		cur = prev
	}
}

// TestCloseWhileRunning closes helpers while goroutines run ops on them: an
// op completes or reports ErrClosed, and none faults (the mmap path keeps
// the address range valid after Close). Every add reported done reached the
// map: the map holds at least their sum, and at most one more per worker
// (on the mmap path an add racing Close reports ErrClosed and may still
// have landed).
func TestCloseWhileRunning(t *testing.T) {
	const workers = 4
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			m := newMap(t, k.typ, k.flags, 4, 8, 4)
			var total uint64
			for round := range 10 {
				h, err := kernatomic.New(m)
				if err != nil {
					t.Fatal(err)
				}
				s := slot(t, h, key32(1))
				var wg sync.WaitGroup
				errs := make(chan error, workers)
				done := make([]uint64, workers)
				started := make(chan struct{}, workers)
				for w := range workers {
					wg.Go(func() {
						started <- struct{}{}
						for {
							if _, _, err := s.Add(1); err != nil {
								if !errors.Is(err, kernatomic.ErrClosed) {
									errs <- err
								}
								return
							}
							done[w]++
						}
					})
				}
				for range workers {
					<-started
				}
				if err := h.Close(); err != nil {
					t.Fatal(err)
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Fatal(err)
				}
				for _, d := range done {
					total += d
				}
				slack := uint64(0)
				if k.mmap {
					slack = workers * uint64(round+1)
				}
				if got := lookup(t, m, key32(1)); got < total || got > total+slack {
					t.Fatalf("round %d: the map holds %d, the adds reported done sum to %d (want at most %d more)", round, got, total, slack)
				}
			}
		})
	}
}
