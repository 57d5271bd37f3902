package main

import (
	"os/exec"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/testenv"
	bpfmaps "github.com/bpfchan/bpfchan/maps"
)

// TestGateStaysClosed: closing the program's gate a second time keeps it
// closed (it used to add the same flag bit twice, which cleared it and let
// runs count again).
func TestGateStaysClosed(t *testing.T) {
	testenv.RequireBPF(t)
	tr, err := openTracer(false)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for i, want := range []uint32{0, 2} {
		ret, err := tr.objs.CloseGate.Run(&ebpf.RunOptions{})
		if err != nil || ret != want {
			t.Fatalf("close %d: %d, %v; want %d", i+1, ret, err, want)
		}
	}
	finished := func() uint64 {
		per, err := tr.finished.Lookup(0)
		if err != nil {
			t.Fatal(err)
		}
		return bpfmaps.Sum(per)
	}
	before := finished()
	for range 3 {
		if err := exec.Command("true").Run(); err != nil { // syscalls the program sees
			t.Fatal(err)
		}
	}
	if after := finished(); after != before {
		t.Fatalf("%d runs counted after the gate was closed twice: it reopened", after-before)
	}
}
