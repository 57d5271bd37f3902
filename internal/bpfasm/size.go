package bpfasm

import (
	"fmt"
	"iter"

	"github.com/cilium/ebpf/asm"
)

// AtomicSize is the operand size of a BPF atomic instruction on a value of
// n bytes: asm.Word for 4, asm.DWord for 8, an error for any other n.
func AtomicSize(n uint32) (asm.Size, error) {
	switch n {
	case 4:
		return asm.Word, nil
	case 8:
		return asm.DWord, nil
	}
	return asm.InvalidSize, fmt.Errorf("value size %d, want 4 or 8 bytes", n)
}

// Pieces splits n bytes into the widest loads or stores that fit, in order:
// it yields each piece's offset and size (8 bytes while at least 8 remain,
// then 4, 2, 1), for copying or filling n bytes of memory.
func Pieces(n int) iter.Seq2[int16, asm.Size] {
	return func(yield func(int16, asm.Size) bool) {
		for off := 0; off < n; {
			w, sz := 8, asm.DWord
			switch rem := n - off; {
			case rem >= 8:
			case rem >= 4:
				w, sz = 4, asm.Word
			case rem >= 2:
				w, sz = 2, asm.Half
			default:
				w, sz = 1, asm.Byte
			}
			if !yield(int16(off), sz) {
				return
			}
			off += w
		}
	}
}
