package maps_test

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	bpfmaps "github.com/bpfchan/bpfchan/maps"
)

func ExampleMap_Entry() {
	m, err := bpfmaps.NewHash[uint32, uint64](16)
	if err != nil {
		panic(err)
	}
	defer m.Close()
	e := m.Entry(1, bpfmaps.WithValidator(func(v uint64) error {
		if v > 1000 {
			return errors.New("over 1000")
		}
		return nil
	}))
	fmt.Println(e.Atomic()) // 8-byte values in a hash map: kernel-atomic

	_ = e.Store(100)
	v, _ := e.Update(func(v uint64) uint64 { return v + 11 })
	fmt.Println(v)
	swapped, _ := e.CompareAndSwap(111, 200)
	fmt.Println(swapped)
	err = e.Store(5000)
	fmt.Println(errors.Is(err, bpfmaps.ErrInvalid))
	v, _ = e.Load()
	fmt.Println(v)
	// Output:
	// true
	// 111
	// true
	// true
	// 200
}

func ExampleAdd() {
	// On a BPF_F_MMAPABLE array, Add is a sync/atomic add on memory shared
	// with the kernel: no syscall.
	m, err := bpfmaps.New[uint32, int64](&ebpf.MapSpec{Type: ebpf.Array, Flags: 1 << 10 /* BPF_F_MMAPABLE */, MaxEntries: 4})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	counter := m.Entry(2)
	for range 3 {
		_, _ = bpfmaps.Add(counter, 5)
	}
	v, err := bpfmaps.Add(counter, -1)
	fmt.Println(v, err)
	// Output: 14 <nil>
}

func ExamplePerCPUMap_Entry() {
	m, err := bpfmaps.NewPerCPUArray[uint64](1)
	if err != nil {
		panic(err)
	}
	defer m.Close()
	e := m.Entry(0)
	_ = e.Store([]uint64{4}) // CPU 0; the other CPUs stay zero
	total, err := bpfmaps.LoadSum(e)
	fmt.Println(total, err, e.Atomic())
	// Output: 4 <nil> false
}
