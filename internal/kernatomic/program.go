package kernatomic

import (
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/bpfasm"
)

// The helper program's context: what userspace passes in with
// BPF_PROG_TEST_RUN, and what the program writes back into the same buffer
// (a syscall program's context is copied back to ctx_in).
//
//	off  0  u32  op (opAdd, opXchg, opCmpXchg, opCmpXchgCreate, opLoad)
//	off  4  u32  unused
//	off  8  u64  operand: the delta, the new value
//	off 16  u64  cmpxchg: the expected value
//	off 24  u64  out: the value before the op, or the errno of a failed create
//	off 32  ...  the key, KeySize bytes (padded to 8)
const (
	offOp     = 0
	offArg    = 8
	offExpect = 16
	offOld    = 24
	offKey    = 32
)

type op uint32

const (
	opAdd           op = 1 // fetch-add; creates a missing key
	opXchg          op = 2 // exchange; creates a missing key
	opCmpXchg       op = 3 // compare-and-exchange; a missing key is reported
	opCmpXchgCreate op = 4 // compare-and-exchange; creates a missing key first
	opLoad          op = 5 // read the value; a missing key is reported
)

// The program's return value (Program.Run's retval). It never returns 0, so
// a 0 (the program did not run) is an unexpected status.
const (
	statusFound    = 1 // the key existed; old holds the previous value
	statusCreated  = 2 // the key was created from the zero value, then the op ran
	statusMissing  = 3 // opCmpXchg or opLoad on a missing key: nothing happened
	statusFailed   = 4 // creating the key failed; old holds the negative errno
	statusVanished = 5 // the key was created or found, then deleted before the op
)

// maxKeySize is what fits on the 512-byte BPF stack next to the zero value
// used to create a key.
const maxKeySize = 512 - 8

const eexist = -int32(unix.EEXIST)

func align8(n int) int { return (n + 7) &^ 7 }

// ctxSize is the size of the context for a key of keySize bytes.
func ctxSize(keySize int) int { return offKey + align8(keySize) }

// program returns the instructions of the helper for the map fd, with keys
// of keySize bytes (1 to maxKeySize) and values of size sz (asm.Word or
// asm.DWord), as Supported checked: look up the key, create it from zero
// with BPF_NOEXIST when the op allows (a concurrent creator wins: EEXIST
// just means look it up again), then apply the atomic op to the value in
// place and write the old value into the context.
func program(fd, keySize int, sz asm.Size) asm.Instructions {
	keyOff := int16(-8 - align8(keySize)) // the key on the stack; the zero value at fp-8
	insns := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	// Copy the key from the context to the stack: map helpers do not take
	// context pointers.
	for off, s := range bpfasm.Pieces(keySize) {
		insns = append(insns,
			asm.LoadMem(asm.R1, asm.R6, offKey+off, s),
			asm.StoreMem(asm.RFP, keyOff+off, asm.R1, s),
		)
	}
	lookup := asm.Instructions{
		asm.LoadMapPtr(asm.R1, fd),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, int32(keyOff)),
		asm.FnMapLookupElem.Call(),
	}
	insns = append(insns, lookup...)
	insns = append(insns,
		asm.Mov.Imm(asm.R7, statusFound),
		asm.JNE.Imm(asm.R0, 0, "op"),
		// Missing.
		asm.LoadMem(asm.R1, asm.R6, offOp, asm.Word),
		asm.JEq.Imm(asm.R1, int32(opCmpXchg), "missing"),
		asm.JNE.Imm(asm.R1, int32(opLoad), "create"),
		asm.Mov.Imm(asm.R0, statusMissing).WithSymbol("missing"),
		asm.Return(),
		asm.Mov.Imm(asm.R1, 0).WithSymbol("create"),
		asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord),
		asm.LoadMapPtr(asm.R1, fd),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, int32(keyOff)),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -8),
		asm.Mov.Imm(asm.R4, unix.BPF_NOEXIST),
		asm.FnMapUpdateElem.Call(),
		asm.Mov.Imm(asm.R7, statusCreated),
		asm.JEq.Imm(asm.R0, 0, "relookup"),
		asm.Mov.Imm(asm.R7, statusFound),
		asm.JEq.Imm(asm.R0, eexist, "relookup"),
		asm.StoreMem(asm.R6, offOld, asm.R0, asm.DWord),
		asm.Mov.Imm(asm.R0, statusFailed),
		asm.Return(),
	)
	relookup := append(asm.Instructions{}, lookup...)
	relookup[0] = relookup[0].WithSymbol("relookup")
	insns = append(insns, relookup...)
	insns = append(insns,
		asm.JNE.Imm(asm.R0, 0, "op"),
		asm.Mov.Imm(asm.R0, statusVanished),
		asm.Return(),
		// r0: the value; r7: the status to return.
		asm.Mov.Reg(asm.R8, asm.R0).WithSymbol("op"),
		asm.LoadMem(asm.R1, asm.R6, offOp, asm.Word),
		asm.LoadMem(asm.R2, asm.R6, offArg, asm.DWord),
		asm.JEq.Imm(asm.R1, int32(opAdd), "add"),
		asm.JEq.Imm(asm.R1, int32(opXchg), "xchg"),
		asm.JEq.Imm(asm.R1, int32(opLoad), "load"),
		asm.LoadMem(asm.R0, asm.R6, offExpect, asm.DWord),
		bpfasm.CmpXchg(asm.R8, asm.R2, sz, 0),
		asm.StoreMem(asm.R6, offOld, asm.R0, asm.DWord),
		asm.Ja.Label("out"),
		bpfasm.FetchAdd(asm.R8, asm.R2, sz, 0).WithSymbol("add"),
		asm.StoreMem(asm.R6, offOld, asm.R2, asm.DWord),
		asm.Ja.Label("out"),
		bpfasm.Xchg(asm.R8, asm.R2, sz, 0).WithSymbol("xchg"),
		asm.StoreMem(asm.R6, offOld, asm.R2, asm.DWord),
		asm.Ja.Label("out"),
		// An aligned 4- or 8-byte load is single-copy atomic.
		asm.LoadMem(asm.R2, asm.R8, 0, sz).WithSymbol("load"),
		asm.StoreMem(asm.R6, offOld, asm.R2, asm.DWord),
		asm.Mov.Reg(asm.R0, asm.R7).WithSymbol("out"),
		asm.Return(),
	)
	return insns
}
