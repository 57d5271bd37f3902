package bpfcall

import (
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/testenv"
)

// TestMmapArray maps arrays of several value sizes and checks the layout
// against the map: a value put through the syscall is at i*stride, a value
// written to memory is what a lookup finds.
func TestMmapArray(t *testing.T) {
	testenv.RequireBPF(t)
	page := os.Getpagesize()
	for _, tc := range []struct {
		valueSize, maxEntries uint32
		stride                int
	}{
		{4, 3, 8},
		{8, 1000, 8},
		{12, 5, 16},
	} {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, Flags: unix.BPF_F_MMAPABLE, KeySize: 4, ValueSize: tc.valueSize, MaxEntries: tc.maxEntries})
		if err != nil {
			t.Fatal(err)
		}
		mem, stride, err := MmapArray(m.FD(), tc.maxEntries, tc.valueSize, unix.PROT_READ|unix.PROT_WRITE)
		if err != nil {
			m.Close()
			t.Fatalf("value size %d: %v", tc.valueSize, err)
		}
		last := tc.maxEntries - 1
		val := make([]byte, tc.valueSize)
		val[0] = 7
		if e := Update(m.FD(), u32(last), val, 0); e != 0 {
			t.Fatal(e)
		}
		atomic.StoreUint32((*uint32)(unsafe.Pointer(&mem[0])), 9)
		got := make([]byte, tc.valueSize)
		if e := Lookup(m.FD(), u32(0), got, 0); e != 0 {
			t.Fatal(e)
		}
		switch {
		case stride != tc.stride:
			t.Errorf("value size %d: got stride %d, want %d", tc.valueSize, stride, tc.stride)
		case len(mem) != int(tc.maxEntries)*tc.stride || cap(mem)%page != 0 || cap(mem) < len(mem) || cap(mem)-len(mem) >= page:
			t.Errorf("value size %d: got len %d cap %d, want len %d in whole pages", tc.valueSize, len(mem), cap(mem), int(tc.maxEntries)*tc.stride)
		case mem[int(last)*stride] != 7:
			t.Errorf("value size %d: got %d at the last value, want 7", tc.valueSize, mem[int(last)*stride])
		case got[0] != 9:
			t.Errorf("value size %d: lookup of a value stored in memory: got %d, want 9", tc.valueSize, got[0])
		}
		if err := MunmapArray(mem); err != nil {
			t.Error(err)
		}
		m.Close()
	}
	if _, _, err := MmapArray(-1, 1<<32-1, 1<<32-1, unix.PROT_READ); !errors.Is(err, unix.ENOMEM) {
		t.Errorf("an array larger than the address space: got %v, want ENOMEM", err)
	}
	if err := MunmapArray(nil); err != nil {
		t.Errorf("unmap nil: got %v, want nil", err)
	}
}
