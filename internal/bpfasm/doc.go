// Package bpfasm builds the BPF atomic instructions that cilium/ebpf v0.22.0
// gets wrong, and holds the small sizing helpers the packages that assemble
// programs share (AtomicSize, Pieces).
//
// asm.FetchAdd.Mem, asm.Xchg.Mem and asm.CmpXchg.Mem marshal with the wrong
// immediate: Instruction.Marshal writes Constant into imm before it folds the
// atomic op into it, so every one of them reaches the kernel as a plain,
// non-fetching BPF_ADD. The constructors here set the opcode of a plain atomic
// add and put the kernel's immediate in Constant themselves, which marshals
// to exactly what the kernel expects. Tests load each one and check that the
// old value comes back.
package bpfasm
