package kernatomic

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/testenv"
)

// TestProgramRunAgrees drives the helper program through cilium's
// Program.Run (Context and ContextOut) instead of the package's own
// BPF_PROG_TEST_RUN call: both must see the same program and layout.
func TestProgramRunAgrees(t *testing.T) {
	testenv.RequireBPF(t)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	h, err := New(m)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx := make([]byte, ctxSize(4))
	binary.NativeEndian.PutUint32(ctx[offOp:], uint32(opAdd))
	binary.NativeEndian.PutUint64(ctx[offArg:], 5)
	binary.NativeEndian.PutUint32(ctx[offKey:], 9)
	for i, want := range []struct {
		status uint32
		old    uint64
	}{{statusCreated, 0}, {statusFound, 5}} {
		ret, err := h.Program().Run(&ebpf.RunOptions{Context: ctx, ContextOut: ctx})
		if err != nil {
			t.Fatal(err)
		}
		if old := binary.NativeEndian.Uint64(ctx[offOld:]); ret != want.status || old != want.old {
			t.Fatalf("run %d: got status %d, old %d; want %d, %d", i, ret, old, want.status, want.old)
		}
	}
	var v uint64
	if err := m.Lookup(uint32(9), &v); err != nil || v != 10 {
		t.Fatalf("got %d, %v; want 10", v, err)
	}
}

// TestWriteOnlyMap: on a BPF_F_WRONLY map a Store is allowed and lands,
// while every op that returns the value is refused with EPERM. The value is
// read back by running the program's load directly.
func TestWriteOnlyMap(t *testing.T) {
	testenv.RequireBPF(t)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, Flags: unix.BPF_F_WRONLY, KeySize: 4, ValueSize: 8, MaxEntries: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	h, err := New(m)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	key := binary.NativeEndian.AppendUint32(nil, 3)
	s, err := h.Key(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store(7); err != nil {
		t.Fatalf("Store: %v", err)
	}
	if _, err := s.Load(); !errors.Is(err, unix.EPERM) {
		t.Errorf("Load: got %v, want EPERM", err)
	}
	if _, _, err := s.Add(1); !errors.Is(err, unix.EPERM) {
		t.Errorf("Add: got %v, want EPERM", err)
	}
	if _, _, err := s.Swap(1); !errors.Is(err, unix.EPERM) {
		t.Errorf("Swap: got %v, want EPERM", err)
	}
	if _, _, err := s.CompareAndSwap(7, 1, false); !errors.Is(err, unix.EPERM) {
		t.Errorf("CompareAndSwap: got %v, want EPERM", err)
	}
	ctx := make([]byte, ctxSize(4))
	binary.NativeEndian.PutUint32(ctx[offOp:], uint32(opLoad))
	copy(ctx[offKey:], key)
	ret, err := h.Program().Run(&ebpf.RunOptions{Context: ctx, ContextOut: ctx})
	if err != nil {
		t.Fatal(err)
	}
	if v := binary.NativeEndian.Uint64(ctx[offOld:]); ret != statusFound || v != 7 {
		t.Fatalf("the map holds: status %d, value %d; want %d, 7", ret, v, statusFound)
	}
}

// TestStatusZero: the helper never returns 0, so a 0 from the run (a
// program that did not do its work) is reported at once as unexpected, not
// retried as if the key had vanished.
func TestStatusZero(t *testing.T) {
	testenv.RequireBPF(t)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	h, err := New(m)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	zero, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.Syscall, Flags: unix.BPF_F_SLEEPABLE, License: "MIT",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		t.Fatal(err)
	}
	orig := h.prog
	h.prog = zero
	defer func() { h.prog = orig; zero.Close() }()
	s, err := h.Key(binary.NativeEndian.AppendUint32(nil, 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Add(1); err == nil || !strings.Contains(err.Error(), "unexpected status 0") {
		t.Fatalf("got %v, want an unexpected status 0", err)
	}
}
