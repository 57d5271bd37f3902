package bpfcall

import (
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/testenv"
)

// testRunRet is what the program of newEchoProg returns.
const testRunRet = 42

// newEchoProg loads a sleepable syscall program that reads the u64 at
// ctx+0, writes it plus one at ctx+8 and returns testRunRet.
func newEchoProg(tb testing.TB) *ebpf.Program {
	tb.Helper()
	testenv.RequireBPF(tb)
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:  "bpfcall_echo",
		Type:  ebpf.Syscall,
		Flags: unix.BPF_F_SLEEPABLE,
		Instructions: asm.Instructions{
			asm.LoadMem(asm.R2, asm.R1, 0, asm.DWord),
			asm.Add.Imm(asm.R2, 1),
			asm.StoreMem(asm.R1, 8, asm.R2, asm.DWord),
			asm.Mov.Imm(asm.R0, testRunRet),
			asm.Return(),
		},
		License: "Dual MIT/GPL",
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

// TestTestRun runs a syscall program: it gets the context, writes into it,
// and its return value comes back. A context smaller than the program reads
// is refused by the kernel (EINVAL), which shows that ctx_size_in is where
// the kernel looks for it.
func TestTestRun(t *testing.T) {
	p := newEchoProg(t)
	ctx := make([]byte, 16)
	binary.NativeEndian.PutUint64(ctx, 41)
	ret, e := TestRun(p.FD(), ctx)
	if e != 0 || ret != testRunRet {
		t.Fatalf("got %d, %v; want %d, success", ret, e, testRunRet)
	}
	if got := binary.NativeEndian.Uint64(ctx[8:]); got != 42 {
		t.Errorf("context written back: got %d, want 42", got)
	}
	// A syscall program's context must be at least what the verifier saw it
	// read; none at all is rejected.
	if _, e := TestRun(p.FD(), nil); e != unix.EINVAL {
		t.Errorf("no context: got %v, want EINVAL", e)
	}
}
