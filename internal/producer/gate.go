package producer

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

// Gate is a ring producer that keeps its record reserved: each run reserves
// an 8-byte record, writes a value into it, then loops (bpf_loop) until
// Open is called or the loop's bound runs out (rounds × GateLooks looks at
// a flag, a tenth of a second or so per round here), and only then submits
// it. It is for tests of a reader that meets a record reserved but not yet
// committed.
type Gate struct {
	prog *ebpf.Program
	flag *ebpf.Map // gateState
}

type gateState struct {
	Reserved uint32 // set by the program once it holds its record
	Open     uint32 // set by Open: submit now
}

// GateLooks is how many times a Gate's run looks at its flag before it
// submits anyway (bpf_loop's limit).
const GateLooks = 1 << 23

// NewRingGate loads a Gate writing into the ring buffer rb; value is what
// its records hold (a native-endian uint64), rounds (1 to 64) how many
// bpf_loop calls of GateLooks looks a run makes before it gives up waiting
// for Open.
func NewRingGate(rb *ebpf.Map, value uint64, rounds int) (*Gate, error) {
	if rb == nil || rb.Type() != ebpf.RingBuf {
		return nil, fmt.Errorf("ring gate: need a ring buffer map")
	}
	if rounds < 1 || rounds > 64 {
		return nil, fmt.Errorf("ring gate: %d rounds, want 1 to 64", rounds)
	}
	flag, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       "bpfchan_gate",
		Type:       ebpf.Array,
		KeySize:    4,
		ValueSize:  8,
		MaxEntries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("create gate map: %w", err)
	}
	lookup := func(insns asm.Instructions) asm.Instructions {
		return append(insns,
			asm.StoreImm(asm.RFP, -4, 0, asm.Word),
			asm.LoadMapPtr(asm.R1, flag.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
		)
	}
	insns := lookup(nil)
	insns[0] = btf.WithFuncMetadata(insns[0], gateFunc("bpfchan_gate", btf.GlobalFunc))
	insns = append(insns,
		asm.JEq.Imm(asm.R0, 0, "exit"),
		asm.Mov.Reg(asm.R8, asm.R0),
		asm.LoadMapPtr(asm.R1, rb.FD()),
		asm.Mov.Imm(asm.R2, 8),
		asm.Mov.Imm(asm.R3, 0),
		asm.FnRingbufReserve.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
		asm.Mov.Reg(asm.R7, asm.R0),
		asm.LoadImm(asm.R1, int64(value), asm.DWord),
		asm.StoreMem(asm.R7, 0, asm.R1, asm.DWord),
		asm.StoreImm(asm.R8, 0, 1, asm.Word), // Reserved
	)
	for range rounds {
		insns = append(insns,
			asm.Mov.Imm(asm.R1, GateLooks),
			asm.Instruction{OpCode: asm.LoadImmOp(asm.DWord), Dst: asm.R2, Src: asm.PseudoFunc, Constant: -1}.WithReference("gate_look"),
			asm.Mov.Imm(asm.R3, 0),
			asm.Mov.Imm(asm.R4, 0),
			asm.FnLoop.Call(),
		)
	}
	insns = append(insns,
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnRingbufSubmit.Call(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("exit"),
		asm.Return(),
	)
	// The loop's callback: 1 (stop) once Open is set.
	look := lookup(nil)
	look[0] = btf.WithFuncMetadata(look[0], gateFunc("gate_look", btf.StaticFunc)).WithSymbol("gate_look")
	insns = append(insns, look...)
	insns = append(insns,
		asm.JEq.Imm(asm.R0, 0, "stop"),
		asm.LoadMem(asm.R1, asm.R0, 4, asm.Word),
		asm.JNE.Imm(asm.R1, 0, "stop"),
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("stop"),
		asm.Return(),
	)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "bpfchan_gate",
		Type:         ebpf.SocketFilter,
		Instructions: insns,
		License:      "Dual MIT/GPL",
	})
	if err != nil {
		flag.Close()
		return nil, fmt.Errorf("load ring gate: %w", err)
	}
	return &Gate{prog: prog, flag: flag}, nil
}

// gateFunc describes a function of the gate's program: bpf_loop takes its
// callback as a function pointer, which the verifier accepts only from a
// program whose functions have BTF.
func gateFunc(name string, linkage btf.FuncLinkage) *btf.Func {
	u64 := &btf.Int{Name: "u64", Size: 8}
	ptr := &btf.Pointer{Target: &btf.Void{}}
	params := []btf.FuncParam{{Name: "ctx", Type: ptr}}
	if linkage == btf.StaticFunc {
		params = []btf.FuncParam{{Name: "index", Type: u64}, {Name: "ctx", Type: ptr}}
	}
	return &btf.Func{
		Name:    name,
		Type:    &btf.FuncProto{Return: &btf.Int{Name: "long", Size: 8, Encoding: btf.Signed}, Params: params},
		Linkage: linkage,
	}
}

// Run resets the gate and runs the program once: it returns after the
// record was submitted (or when the ring had no room for it). Call it from
// another goroutine than the one that will call Open.
func (g *Gate) Run() error {
	if err := g.flag.Put(uint32(0), gateState{}); err != nil {
		return fmt.Errorf("reset gate: %w", err)
	}
	if _, err := g.prog.Run(&ebpf.RunOptions{Data: make([]byte, 14)}); err != nil {
		return fmt.Errorf("run gate: %w", err)
	}
	return nil
}

// Reserved reports whether the current run holds its record reserved (or
// has held it: it stays true after the submit, until the next Run).
func (g *Gate) Reserved() (bool, error) {
	var s gateState
	if err := g.flag.Lookup(uint32(0), &s); err != nil {
		return false, fmt.Errorf("read gate: %w", err)
	}
	return s.Reserved != 0, nil
}

// Open lets the current run submit its record.
func (g *Gate) Open() error {
	if err := g.flag.Put(uint32(0), gateState{Reserved: 1, Open: 1}); err != nil {
		return fmt.Errorf("open gate: %w", err)
	}
	return nil
}

// Close unloads the program and its flag map.
func (g *Gate) Close() error { return errors.Join(g.prog.Close(), g.flag.Close()) }
