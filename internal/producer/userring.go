package producer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/bpfchan/bpfchan/internal/bpfasm"
)

// Drainer is the kernel side of a user ring buffer for tests and
// benchmarks: a BPF program whose every run calls bpf_user_ringbuf_drain,
// with a callback that reads the first 8 bytes of each record
// (bpf_dynptr_read) as a sequence number (native byte order), and keeps
// what it saw in a one-entry array map (DrainStats). It is a socket
// filter run with Program.Run, so nothing needs attaching.
//
// One drain call takes at most BPF_MAX_USER_RINGBUF_SAMPLES (128 Ki)
// records. Runs on several goroutines at once are safe: the kernel lets
// one drain at a time into a ring and answers the others EBUSY (counted in
// Failed).
type Drainer struct {
	prog  *ebpf.Program
	stats *ebpf.Map
}

// DrainStats is what a Drainer's runs saw, the value of its array map.
type DrainStats struct {
	Records  uint64 // records read (8 bytes or more)
	Sum      uint64 // the sum of their sequence numbers
	Next     uint64 // the sequence number expected next: the last one read plus one
	Disorder uint64 // records whose sequence number was not Next
	Short    uint64 // records under 8 bytes (drained, not read)
	Calls    uint64 // bpf_user_ringbuf_drain calls
	Failed   uint64 // calls that returned an error
	LastErr  int64  // the last error a call returned (a negative errno), 0 for none
}

const (
	offRecords  = 0
	offSum      = 8
	offNext     = 16
	offDisorder = 24
	offShort    = 32
	offCalls    = 40
	offFailed   = 48
	offLastErr  = 56
)

// BTF of the two functions: the kernel wants function metadata for every
// function of a program with a callback (a BPF-to-BPF function).
var (
	long    = &btf.Int{Name: "long", Size: 8, Encoding: btf.Signed}
	voidPtr = &btf.Pointer{Target: &btf.Void{}}
	mainFn  = &btf.Func{
		Name:    "bpfchan_urb",
		Type:    &btf.FuncProto{Return: long, Params: []btf.FuncParam{{Name: "ctx", Type: voidPtr}}},
		Linkage: btf.GlobalFunc,
	}
	drainCb = &btf.Func{
		Name: "bpfchan_urb_cb",
		Type: &btf.FuncProto{Return: long, Params: []btf.FuncParam{
			{Name: "dynptr", Type: voidPtr},
			{Name: "ctx", Type: voidPtr},
		}},
		Linkage: btf.StaticFunc,
	}
)

// NewUserRingDrain loads a Drainer of the user ring buffer m. With
// NoWakeup its drains pass BPF_RB_NO_WAKEUP: a writer waiting for space is
// not notified and must find it by looking.
func NewUserRingDrain(m *ebpf.Map, opts ...Option) (*Drainer, error) {
	return newUserRingDrain(m, 0, opts)
}

// NewUserRingWorker is NewUserRingDrain with a callback that also spins
// work iterations of a loop per record (1 to 4096), standing in for a
// program that processes each record: a drainer slow enough to be the
// bottleneck of a benchmark.
func NewUserRingWorker(m *ebpf.Map, work int, opts ...Option) (*Drainer, error) {
	if work < 1 || work > maxWork {
		return nil, fmt.Errorf("user ring worker: %d iterations per record, want 1..%d", work, maxWork)
	}
	return newUserRingDrain(m, work, opts)
}

// maxWork bounds the worker's loop, which the verifier walks through.
const maxWork = 4096

func newUserRingDrain(m *ebpf.Map, work int, opts []Option) (*Drainer, error) {
	if m == nil || m.Type() != ebpf.UserRingbuf {
		return nil, fmt.Errorf("user ring drainer: need a user ring buffer map")
	}
	o := apply(opts)
	st, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       "bpfchan_urbstat",
		Type:       ebpf.Array,
		KeySize:    4,
		ValueSize:  uint32(binary.Size(DrainStats{})),
		MaxEntries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("create drainer stats map: %w", err)
	}
	insns := asm.Instructions{
		// The main function: find the stats, pass them to the callback
		// through a stack slot, drain, count the call.
		btf.WithFuncMetadata(asm.StoreImm(asm.RFP, -4, 0, asm.Word), mainFn),
		asm.LoadMapPtr(asm.R1, st.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
		asm.Mov.Reg(asm.R6, asm.R0),
		asm.StoreMem(asm.RFP, -16, asm.R6, asm.DWord),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.Instruction{OpCode: asm.LoadImmOp(asm.DWord), Dst: asm.R2, Src: asm.PseudoFunc, Constant: -1}.
			WithReference(drainCb.Name),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -16),
		asm.Mov.Imm(asm.R4, int32(o.flags)),
		asm.FnUserRingbufDrain.Call(),
		asm.Mov.Imm(asm.R1, 1),
		bpfasm.Add(asm.R6, asm.R1, asm.DWord, offCalls),
		asm.JSGE.Imm(asm.R0, 0, "exit"),
		bpfasm.Add(asm.R6, asm.R1, asm.DWord, offFailed),
		asm.StoreMem(asm.R6, offLastErr, asm.R0, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("exit"),
		asm.Return(),

		// The callback (r1: the record's dynptr, r2: the main function's
		// stack slot holding the stats). Only one drain runs at a time, so
		// plain updates suffice.
		btf.WithFuncMetadata(asm.LoadMem(asm.R6, asm.R2, 0, asm.DWord), drainCb).WithSymbol(drainCb.Name),
		asm.Mov.Reg(asm.R3, asm.R1),
		asm.Mov.Reg(asm.R1, asm.RFP),
		asm.Add.Imm(asm.R1, -8),
		asm.Mov.Imm(asm.R2, 8),
		asm.Mov.Imm(asm.R4, 0),
		asm.Mov.Imm(asm.R5, 0),
		asm.FnDynptrRead.Call(),
		asm.JNE.Imm(asm.R0, 0, "short"),
		asm.LoadMem(asm.R1, asm.RFP, -8, asm.DWord),
		asm.LoadMem(asm.R2, asm.R6, offNext, asm.DWord),
		asm.JEq.Reg(asm.R1, asm.R2, "inorder"),
		asm.LoadMem(asm.R3, asm.R6, offDisorder, asm.DWord),
		asm.Add.Imm(asm.R3, 1),
		asm.StoreMem(asm.R6, offDisorder, asm.R3, asm.DWord),
		asm.Mov.Reg(asm.R2, asm.R1).WithSymbol("inorder"),
		asm.Add.Imm(asm.R2, 1),
		asm.StoreMem(asm.R6, offNext, asm.R2, asm.DWord),
		asm.LoadMem(asm.R3, asm.R6, offSum, asm.DWord),
		asm.Add.Reg(asm.R3, asm.R1),
		asm.StoreMem(asm.R6, offSum, asm.R3, asm.DWord),
		asm.LoadMem(asm.R3, asm.R6, offRecords, asm.DWord),
		asm.Add.Imm(asm.R3, 1),
		asm.StoreMem(asm.R6, offRecords, asm.R3, asm.DWord),
		asm.Mov.Imm(asm.R0, int32(work)),
		asm.JEq.Imm(asm.R0, 0, "done"),
		asm.Sub.Imm(asm.R0, 1).WithSymbol("work"),
		asm.JNE.Imm(asm.R0, 0, "work"),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("done"),
		asm.Return(),
		asm.LoadMem(asm.R3, asm.R6, offShort, asm.DWord).WithSymbol("short"),
		asm.Add.Imm(asm.R3, 1),
		asm.StoreMem(asm.R6, offShort, asm.R3, asm.DWord),
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "bpfchan_urb",
		Type:         ebpf.SocketFilter,
		Instructions: insns,
		License:      "Dual MIT/GPL",
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("load user ring drainer: %w", err)
	}
	return &Drainer{prog: prog, stats: st}, nil
}

// Run runs the drainer n times (Program.Run with Repeat: possibly a few
// more).
func (d *Drainer) Run(n int) error {
	if n <= 0 {
		return nil
	}
	data := make([]byte, 14) // a socket filter's test input: one Ethernet header
	if _, err := d.prog.Run(&ebpf.RunOptions{Data: data, Repeat: uint32(min(uint64(n), 1<<31))}); err != nil {
		return fmt.Errorf("run user ring drainer: %w", err)
	}
	return nil
}

// Until runs the drainer, repeat runs at a time, until it has read at
// least records records in all, or ctx is done (then it returns
// context.Cause(ctx)).
func (d *Drainer) Until(ctx context.Context, records uint64, repeat int) error {
	for {
		s, err := d.Stats()
		if err != nil {
			return err
		}
		if s.Records >= records {
			return nil
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if err := d.Run(repeat); err != nil {
			return err
		}
	}
}

// Stats returns what the drainer's runs saw so far.
func (d *Drainer) Stats() (DrainStats, error) {
	var s DrainStats
	if err := d.stats.Lookup(uint32(0), &s); err != nil {
		return s, fmt.Errorf("read drainer stats: %w", err)
	}
	return s, nil
}

// Close unloads the program and its stats map.
func (d *Drainer) Close() error {
	return errors.Join(d.prog.Close(), d.stats.Close())
}
