package bpfasm_test

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf/asm"

	"github.com/bpfchan/bpfchan/internal/bpfasm"
)

func TestAtomicSize(t *testing.T) {
	for n, want := range map[uint32]asm.Size{4: asm.Word, 8: asm.DWord} {
		if got, err := bpfasm.AtomicSize(n); got != want || err != nil {
			t.Errorf("AtomicSize(%d): got %v, %v; want %v", n, got, err, want)
		}
	}
	for _, n := range []uint32{0, 1, 2, 3, 5, 16} {
		if _, err := bpfasm.AtomicSize(n); err == nil {
			t.Errorf("AtomicSize(%d): got no error", n)
		}
	}
}

func TestPieces(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{
		{0, ""},
		{1, "0:Byte "},
		{7, "0:Word 4:Half 6:Byte "},
		{8, "0:DWord "},
		{13, "0:DWord 8:Word 12:Byte "},
		{19, "0:DWord 8:DWord 16:Half 18:Byte "},
	} {
		got := ""
		for off, sz := range bpfasm.Pieces(c.n) {
			got += fmt.Sprintf("%d:%v ", off, sz)
		}
		if got != c.want {
			t.Errorf("Pieces(%d): got %q, want %q", c.n, got, c.want)
		}
	}
}
