package bpfasm

import "github.com/cilium/ebpf/asm"

// The kernel's BPF_ATOMIC immediates (include/uapi/linux/bpf.h).
const (
	immAdd      = 0x00
	immFetch    = 0x01
	immXchg     = 0xe0 | immFetch
	immCmpXchg  = 0xf0 | immFetch
	immFetchAdd = immAdd | immFetch
)

func atomic(imm int64, dst, src asm.Register, size asm.Size, off int16) asm.Instruction {
	return asm.Instruction{
		OpCode:   asm.AddAtomic.OpCode(size),
		Dst:      dst,
		Src:      src,
		Offset:   off,
		Constant: imm,
	}
}

// Add emits `lock *(size *)(dst + off) += src` (no fetch).
func Add(dst, src asm.Register, size asm.Size, off int16) asm.Instruction {
	return atomic(immAdd, dst, src, size, off)
}

// FetchAdd emits `src = atomic_fetch_add((size *)(dst + off), src)`: src
// receives the value before the add.
func FetchAdd(dst, src asm.Register, size asm.Size, off int16) asm.Instruction {
	return atomic(immFetchAdd, dst, src, size, off)
}

// Xchg emits `src = xchg((size *)(dst + off), src)`.
func Xchg(dst, src asm.Register, size asm.Size, off int16) asm.Instruction {
	return atomic(immXchg, dst, src, size, off)
}

// CmpXchg emits `r0 = cmpxchg((size *)(dst + off), r0, src)`: when the
// memory equals r0 it becomes src; r0 always receives the old memory value.
func CmpXchg(dst, src asm.Register, size asm.Size, off int16) asm.Instruction {
	return atomic(immCmpXchg, dst, src, size, off)
}
