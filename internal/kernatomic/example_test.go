package kernatomic_test

import (
	"encoding/binary"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/kernatomic"
)

func ExampleNew() {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 16})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	h, err := kernatomic.New(m)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()
	s, err := h.Key(binary.NativeEndian.AppendUint32(nil, 7))
	if err != nil {
		fmt.Println(err)
		return
	}
	old, created, _ := s.Add(5) // key 7 is missing: created from zero
	fmt.Println(old, created)
	old, created, _ = s.Add(5)
	fmt.Println(old, created)
	prev, swapped, _ := s.CompareAndSwap(10, 100, false)
	fmt.Println(prev, swapped)
	// Output:
	// 0 true
	// 5 false
	// 10 true
}
