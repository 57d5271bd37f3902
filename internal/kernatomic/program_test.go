package kernatomic

import (
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf"

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
	h, err := New(m, "agree")
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
