package bpfasm_test

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/bpfchan/bpfchan/internal/bpfasm"
	"github.com/bpfchan/bpfchan/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// run loads a program that looks up element 0 of an 8-byte array holding
// start, applies op to it with operand (and expected in r0 for cmpxchg), and
// returns what op left in its result register. It reports that result and
// the element's final value.
func run(t *testing.T, start uint64, op func() asm.Instructions) (ret uint32, final uint64) {
	t.Helper()
	testenv.RequireBPF(t)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Put(uint32(0), start); err != nil {
		t.Fatal(err)
	}
	insns := asm.Instructions{
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JNE.Imm(asm.R0, 0, "found"),
		asm.Return(),
		asm.Mov.Reg(asm.R6, asm.R0).WithSymbol("found"),
	}
	insns = append(insns, op()...)
	insns = append(insns, asm.Return())
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SocketFilter, Instructions: insns, License: "Dual MIT/GPL"})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	ret, err = prog.Run(&ebpf.RunOptions{Data: make([]byte, 14)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Lookup(uint32(0), &final); err != nil {
		t.Fatal(err)
	}
	return ret, final
}

func TestAtomicsReturnOldValue(t *testing.T) {
	for _, tc := range []struct {
		name      string
		op        func() asm.Instructions
		ret       uint32
		final     uint64
		startWith uint64
	}{
		{"add", func() asm.Instructions {
			return asm.Instructions{asm.Mov.Imm(asm.R1, 5), bpfasm.Add(asm.R6, asm.R1, asm.DWord, 0), asm.Mov.Imm(asm.R0, 0)}
		}, 0, 47, 42},
		{"fetch-add", func() asm.Instructions {
			return asm.Instructions{asm.Mov.Imm(asm.R1, 5), bpfasm.FetchAdd(asm.R6, asm.R1, asm.DWord, 0), asm.Mov.Reg(asm.R0, asm.R1)}
		}, 42, 47, 42},
		{"xchg", func() asm.Instructions {
			return asm.Instructions{asm.Mov.Imm(asm.R1, 9), bpfasm.Xchg(asm.R6, asm.R1, asm.DWord, 0), asm.Mov.Reg(asm.R0, asm.R1)}
		}, 42, 9, 42},
		{"cmpxchg hit", func() asm.Instructions {
			return asm.Instructions{asm.Mov.Imm(asm.R0, 42), asm.Mov.Imm(asm.R1, 7), bpfasm.CmpXchg(asm.R6, asm.R1, asm.DWord, 0)}
		}, 42, 7, 42},
		{"cmpxchg miss", func() asm.Instructions {
			return asm.Instructions{asm.Mov.Imm(asm.R0, 41), asm.Mov.Imm(asm.R1, 7), bpfasm.CmpXchg(asm.R6, asm.R1, asm.DWord, 0)}
		}, 42, 42, 42},
		{"fetch-add word", func() asm.Instructions {
			return asm.Instructions{asm.Mov.Imm(asm.R1, 1), bpfasm.FetchAdd(asm.R6, asm.R1, asm.Word, 0), asm.Mov.Reg(asm.R0, asm.R1)}
		}, 42, 43, 42},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ret, final := run(t, tc.startWith, tc.op)
			if ret != tc.ret || final != tc.final {
				t.Fatalf("got ret %d, final %d; want ret %d, final %d", ret, final, tc.ret, tc.final)
			}
		})
	}
}

// TestCiliumFetchAddIsBroken documents why this package exists: if cilium's
// own constructor ever marshals correctly, this test fails and the package
// can go.
func TestCiliumFetchAddIsBroken(t *testing.T) {
	ret, final := run(t, 42, func() asm.Instructions {
		return asm.Instructions{asm.Mov.Imm(asm.R1, 5), asm.FetchAdd.Mem(asm.R6, asm.R1, asm.DWord, 0), asm.Mov.Reg(asm.R0, asm.R1)}
	})
	if ret == 42 {
		t.Fatalf("cilium's asm.FetchAdd.Mem now returns the old value (final %d): use it and retire bpfasm", final)
	}
	t.Logf("cilium's asm.FetchAdd.Mem returned %d (want 42 if it fetched): it is a plain add", ret)
}
