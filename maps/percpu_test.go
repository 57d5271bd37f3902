package maps_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/bpfchan/bpfchan/internal/testenv"
	bpfmaps "github.com/bpfchan/bpfchan/maps"
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

func TestPerCPU(t *testing.T) {
	testenv.RequireBPF(t)
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []ebpf.MapType{ebpf.PerCPUHash, ebpf.PerCPUArray, ebpf.LRUCPUHash} {
		t.Run(typ.String(), func(t *testing.T) {
			m, err := bpfmaps.NewPerCPU[uint32, uint32](&ebpf.MapSpec{Name: "pc", Type: typ, MaxEntries: 8})
			if err != nil {
				t.Fatal(err)
			}
			mustClose(t, m)
			if m.CPUs() != cpus {
				t.Fatalf("CPUs() = %d, want PossibleCPU %d", m.CPUs(), cpus)
			}
			want := make([]uint32, cpus)
			for i := range want {
				want[i] = uint32(10 * (i + 1))
			}
			if err := m.Put(3, want); err != nil {
				t.Fatal(err)
			}
			got, err := m.Lookup(3)
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("Lookup = %v, %v; want %v", got, err, want)
			}
			if s := bpfmaps.Sum(got); s != 10*uint32(cpus*(cpus+1)/2) {
				t.Errorf("Sum = %d", s)
			}
			// Fewer values than CPUs: the rest are zero.
			if err := m.Put(4, []uint32{7}); err != nil {
				t.Fatal(err)
			}
			got, _ = m.Lookup(4)
			if got[0] != 7 || bpfmaps.Sum(got) != 7 {
				t.Errorf("Lookup(4) = %v, want [7 0...]", got)
			}
			wantMsg(t, m.Put(5, make([]uint32, cpus+1)), "possible CPUs", `"pc"`)
			var ierr error
			seen := map[uint32][]uint32{}
			for k, v := range m.All(&ierr) {
				seen[k] = v
			}
			if ierr != nil || !slices.Equal(seen[3], want) {
				t.Fatalf("All: %v, %v; want 3=%v", seen, ierr, want)
			}
			if typ == ebpf.PerCPUArray {
				_, err := m.Lookup(8)
				wantErr(t, err, bpfmaps.ErrOutOfRange, "lookup", "not below 8")
				if len(seen) != 8 {
					t.Fatalf("All on an array: %d elements, want 8", len(seen))
				}
				return
			}
			if len(seen) != 2 {
				t.Fatalf("All: %d elements, want 2", len(seen))
			}
			wantErr(t, m.Insert(3, want), bpfmaps.ErrKeyExist)
			if err := m.Delete(3); err != nil {
				t.Fatal(err)
			}
			wantErr(t, m.Delete(3), bpfmaps.ErrKeyNotExist, "delete")
			if n, err := m.Clear(); err != nil || n != 1 {
				t.Fatalf("Clear = %d, %v; want 1", n, err)
			}
		})
	}
}

// TestPerCPUFromKernel lets a BPF program add 3 to its CPU's value of a
// per-CPU array: the sum over CPUs counts the runs. (internal/producer has
// no per-CPU adder; the program is small enough to live here.)
func TestPerCPUFromKernel(t *testing.T) {
	testenv.RequireBPF(t)
	m, err := bpfmaps.NewPerCPUArray[uint64](4)
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, m)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.SocketFilter,
		License: "MIT",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R1, 2),
			asm.StoreMem(asm.RFP, -4, asm.R1, asm.Word),
			asm.LoadMapPtr(asm.R1, m.Map().FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "exit"),
			asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
			asm.Add.Imm(asm.R1, 3),
			asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("exit"),
			asm.Return(),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	if _, err := prog.Run(&ebpf.RunOptions{Data: make([]byte, 14), Repeat: 100}); err != nil {
		t.Fatal(err)
	}
	got, err := m.Lookup(2)
	if err != nil {
		t.Fatal(err)
	}
	if s := bpfmaps.Sum(got); s < 300 || s%3 != 0 {
		t.Fatalf("Sum = %d over %v, want 3 per run, at least 100 runs", s, got)
	}
}

func TestMapOfMaps(t *testing.T) {
	testenv.RequireBPF(t)
	innerSpec := &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 2}
	outer, err := bpfmaps.NewHashOfMaps[uint32](4, innerSpec)
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, outer)
	inner, err := bpfmaps.NewArray[uint64](2)
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, inner)
	if err := inner.Put(1, 42); err != nil {
		t.Fatal(err)
	}
	if err := outer.Put(7, inner.Map()); err != nil {
		t.Fatal(err)
	}
	got, err := outer.Lookup(7)
	if err != nil {
		t.Fatal(err)
	}
	view, err := bpfmaps.Open[uint32, uint64](got)
	got.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()
	if v, err := view.Lookup(1); err != nil || v != 42 {
		t.Fatalf("inner Lookup = %d, %v; want 42", v, err)
	}
	var ierr error
	var keys []uint32
	for k := range outer.Keys(&ierr) {
		keys = append(keys, k)
	}
	if ierr != nil || !slices.Equal(keys, []uint32{7}) {
		t.Fatalf("Keys = %v, %v; want [7]", keys, ierr)
	}
	if _, err := outer.Lookup(8); !errors.Is(err, bpfmaps.ErrKeyNotExist) {
		t.Fatalf("got %v, want ErrKeyNotExist", err)
	}
	if err := outer.Delete(7); err != nil {
		t.Fatal(err)
	}

	arr, err := bpfmaps.NewArrayOfMaps(2, innerSpec)
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, arr)
	if err := arr.Put(1, inner.Map()); err != nil {
		t.Fatal(err)
	}
	got, err = arr.Lookup(1)
	if err != nil {
		t.Fatal(err)
	}
	got.Close()
	wrong, err := bpfmaps.NewHash[uint32, uint32](2)
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, wrong)
	if err := arr.Put(0, wrong.Map()); err == nil {
		t.Fatal("storing a map unlike the inner spec: got no error")
	}
	// An index not below MaxEntries is out of range, not "full" (the
	// kernel's E2BIG) nor absent (its ENOENT).
	_, lookupErr := arr.Lookup(2)
	tests := []struct {
		op  string
		err error
	}{
		{"put", arr.Put(9, inner.Map())},
		{"lookup", lookupErr},
		{"delete", arr.Delete(2)},
	}
	for _, tt := range tests {
		wantErr(t, tt.err, bpfmaps.ErrOutOfRange, tt.op, "ArrayOfMaps map", "index", "not below 2")
		if errors.Is(tt.err, bpfmaps.ErrFull) || errors.Is(tt.err, bpfmaps.ErrKeyNotExist) {
			t.Errorf("%s: got %v, want only ErrOutOfRange", tt.op, tt.err)
		}
	}
}

func TestBloomFilter(t *testing.T) {
	testenv.RequireBPF(t)
	b, err := bpfmaps.NewBloomFilter[uint64](100, 3)
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, b)
	for i := range uint64(10) {
		if err := b.Push(i * 1000); err != nil {
			t.Fatal(err)
		}
	}
	for i := range uint64(10) {
		if ok, err := b.Contains(i * 1000); err != nil || !ok {
			t.Fatalf("Contains(%d) = %v, %v; want true", i*1000, ok, err)
		}
	}
	misses := 0
	for i := range uint64(100) {
		ok, err := b.Contains(i*1000 + 1)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			misses++
		}
	}
	if misses < 50 {
		t.Fatalf("%d of 100 absent values reported absent, want most", misses)
	}
	if _, err := bpfmaps.NewBloomFilter[uint64](10, 16); !errors.Is(err, bpfmaps.ErrInvalidSize) {
		t.Fatalf("16 hashes: got %v, want ErrInvalidSize", err)
	}
}

// TestPerCPUBatch covers what PerCPUMap shares with Map: Replace, Keys,
// BatchPut, BatchDelete and Drain.
func TestPerCPUBatch(t *testing.T) {
	testenv.RequireBPF(t)
	m, err := bpfmaps.NewPerCPUHash[uint32, uint64](16)
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, m)
	wantErr(t, m.Replace(1, []uint64{1}), bpfmaps.ErrKeyNotExist, "replace")
	keys := []uint32{1, 2, 3, 4}
	values := [][]uint64{{10}, {20}, {30}, {40}}
	if n, err := m.BatchPut(keys, values); err != nil || n != 4 {
		t.Fatalf("BatchPut = %d, %v; want 4", n, err)
	}
	if err := m.Replace(4, []uint64{41}); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Lookup(4); err != nil || got[0] != 41 || bpfmaps.Sum(got) != 41 {
		t.Fatalf("Lookup(4) = %v, %v; want [41 0...]", got, err)
	}
	var ierr error
	got := slices.Sorted(m.Keys(&ierr))
	if ierr != nil || !slices.Equal(got, keys) {
		t.Fatalf("Keys = %v, %v; want %v", got, ierr, keys)
	}
	n, err := m.BatchDelete([]uint32{1, 9, 2})
	wantErr(t, err, bpfmaps.ErrKeyNotExist, "batch delete")
	if n != 1 {
		t.Fatalf("BatchDelete = %d, want 1 (it stops at the missing key)", n)
	}
	dk, dv, err := m.Drain()
	if err != nil || len(dk) != 3 {
		t.Fatalf("Drain = %v, %v; want 3 keys", dk, err)
	}
	for i, k := range dk {
		if len(dv[i]) != m.CPUs() || dv[i][0] != map[uint32]uint64{2: 20, 3: 30, 4: 41}[k] {
			t.Errorf("Drain: %d = %v", k, dv[i])
		}
	}
	if _, err := m.Lookup(3); !errors.Is(err, bpfmaps.ErrKeyNotExist) {
		t.Fatalf("after Drain: %v, want ErrKeyNotExist", err)
	}
	_, err = m.BatchPut([]uint32{1}, [][]uint64{make([]uint64, m.CPUs()+1)})
	wantMsg(t, err, "batch put", "possible CPUs")

	arr, err := bpfmaps.NewPerCPUArray[uint64](4)
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, arr)
	_, err = arr.BatchDelete([]uint32{1})
	wantErr(t, err, errors.ErrUnsupported, "batch delete")
	_, err = arr.BatchPut([]uint32{4}, [][]uint64{{1}})
	wantErr(t, err, bpfmaps.ErrOutOfRange, "batch put", "not below 4")
}
