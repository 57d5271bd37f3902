package maps_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	bpfmaps "github.com/bpfchan/bpfchan/maps"
	"github.com/cilium/ebpf"
)

func ExampleNewHash() {
	m, err := bpfmaps.NewHash[uint32, uint64](128)
	if err != nil {
		panic(err)
	}
	defer m.Close()
	_ = m.Put(7, 49)
	v, err := m.Lookup(7)
	fmt.Println(v, err)
	_, err = m.Lookup(8)
	fmt.Println(errors.Is(err, bpfmaps.ErrKeyNotExist))
	fmt.Println(errors.Is(m.Insert(7, 0), bpfmaps.ErrKeyExist))
	// Output:
	// 49 <nil>
	// true
	// true
}

func ExampleNewLRUHash() {
	m, err := bpfmaps.NewLRUHash[uint32, uint32](1024)
	if err != nil {
		panic(err)
	}
	defer m.Close()
	// An LRU hash never reports ErrFull: it evicts the least recently used.
	for i := range uint32(4096) {
		if err := m.Put(i, i); err != nil {
			panic(err)
		}
	}
	v, err := m.Lookup(4095)
	fmt.Println(v, err)
	// Output: 4095 <nil>
}

func ExampleNewArray() {
	m, err := bpfmaps.NewArray[uint64](4)
	if err != nil {
		panic(err)
	}
	defer m.Close()
	_ = m.Put(2, 20)
	var err2 error
	for i, v := range m.All(&err2) {
		fmt.Println(i, v)
	}
	fmt.Println(err2, errors.Is(m.Put(4, 1), bpfmaps.ErrOutOfRange))
	// Output:
	// 0 0
	// 1 0
	// 2 20
	// 3 0
	// <nil> true
}

func ExampleNew() {
	type key struct{ PID, TID uint32 }
	m, err := bpfmaps.New[key, uint64](&ebpf.MapSpec{
		Name:       "per_thread",
		Type:       ebpf.Hash,
		MaxEntries: 64, // KeySize and ValueSize come from key and uint64
	})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	fmt.Println(m.Map().KeySize(), m.Map().ValueSize())
	// err reads `lookup Hash map "per_thread" (id 17): key does not exist`.
	_, err = m.Lookup(key{1, 2})
	fmt.Println(errors.Is(err, bpfmaps.ErrKeyNotExist))
	// Output:
	// 8 8
	// true
}

func ExampleOpen() {
	// raw stands for a map from a bpf2go object or a collection.
	raw, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 8})
	if err != nil {
		panic(err)
	}
	defer raw.Close()
	m, err := bpfmaps.Open[uint32, uint64](raw) // wraps a clone: close both
	if err != nil {
		panic(err)
	}
	defer m.Close()
	_ = m.Put(1, 100)
	var v uint64
	_ = raw.Lookup(uint32(1), &v)
	fmt.Println(v)
	_, err = bpfmaps.Open[uint32, uint32](raw)
	fmt.Println(errors.Is(err, bpfmaps.ErrSizeMismatch))
	// Output:
	// 100
	// true
}

func ExampleNewQueue() {
	q, err := bpfmaps.NewQueue[uint32](2)
	if err != nil {
		panic(err)
	}
	defer q.Close()
	_ = q.Push(0) // a zero value is a value
	_ = q.Push(1)
	fmt.Println(errors.Is(q.Push(2), bpfmaps.ErrFull))
	_ = q.PushOverwrite(2) // evicts 0
	for {
		v, err := q.Pop()
		if errors.Is(err, bpfmaps.ErrEmpty) {
			break
		}
		fmt.Println(v)
	}
	// Output:
	// true
	// 1
	// 2
}

func ExampleNewStack() {
	s, err := bpfmaps.NewStack[uint32](8)
	if err != nil {
		panic(err)
	}
	defer s.Close()
	for i := range uint32(3) {
		_ = s.Push(i)
	}
	top, _ := s.Peek()
	fmt.Println("top", top)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for range 3 {
		v, err := s.PopWait(ctx)
		fmt.Println(v, err)
	}
	// Output:
	// top 2
	// 2 <nil>
	// 1 <nil>
	// 0 <nil>
}

func ExampleOpenQueue() {
	raw, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Queue, ValueSize: 8, MaxEntries: 8})
	if err != nil {
		panic(err)
	}
	defer raw.Close()
	q, err := bpfmaps.OpenQueue[uint64](raw)
	if err != nil {
		panic(err)
	}
	defer q.Close()
	_ = raw.Update(nil, uint64(42), ebpf.UpdateAny)
	v, err := q.Pop()
	fmt.Println(v, err)
	// Output: 42 <nil>
}

func ExampleOpenStack() {
	raw, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Stack, ValueSize: 4, MaxEntries: 8})
	if err != nil {
		panic(err)
	}
	defer raw.Close()
	s, err := bpfmaps.OpenStack[uint32](raw)
	if err != nil {
		panic(err)
	}
	defer s.Close()
	_, err = s.Pop()
	fmt.Println(errors.Is(err, bpfmaps.ErrEmpty))
	// Output: true
}

func ExampleNewRingBuf() {
	rb, err := bpfmaps.NewRingBuf(1 << 16)
	if err != nil {
		panic(err)
	}
	defer rb.Close()
	fmt.Println(rb.Type(), rb.MaxEntries())
	_, err = bpfmaps.NewRingBuf(5000)
	fmt.Println(errors.Is(err, bpfmaps.ErrInvalidSize))
	// Output:
	// RingBuf 65536
	// true
}

func ExampleNewUserRingBuf() {
	// A BPF program drains it with bpf_user_ringbuf_drain; package pump's
	// UserRingBuf writes into it.
	rb, err := bpfmaps.NewUserRingBuf(1<<16, bpfmaps.WithName("commands"))
	if err != nil {
		panic(err)
	}
	defer rb.Close()
	info, err := rb.Info()
	if err != nil {
		panic(err)
	}
	fmt.Println(rb.Type(), rb.MaxEntries(), info.Name)
	_, err = bpfmaps.NewUserRingBuf(3 << 12)
	fmt.Println(errors.Is(err, bpfmaps.ErrInvalidSize))
	// Output:
	// UserRingbuf 65536 commands
	// true
}

func ExampleWithName() {
	// bpftool map show lists the map as "counts"; errors name it so too.
	m, err := bpfmaps.NewHash[uint32, uint64](8, bpfmaps.WithName("counts"))
	if err != nil {
		panic(err)
	}
	defer m.Close()
	info, err := m.Map().Info()
	if err != nil {
		panic(err)
	}
	fmt.Println(info.Name)
	// err reads `lookup Hash map "counts" (id 17): key does not exist`.
	_, err = m.Lookup(1)
	fmt.Println(errors.Is(err, bpfmaps.ErrKeyNotExist))
	_, err = bpfmaps.NewHash[uint32, uint64](8, bpfmaps.WithName("no-dashes"))
	fmt.Println(errors.Is(err, bpfmaps.ErrInvalidName))
	// Output:
	// counts
	// true
	// true
}

func ExampleLoadPinned() {
	// Needs a bpffs at /sys/fs/bpf (mount -t bpf bpf /sys/fs/bpf).
	m, err := bpfmaps.NewHash[uint32, uint64](8)
	if err != nil {
		panic(err)
	}
	_ = m.Put(1, 1)
	if err := m.Pin("/sys/fs/bpf/example_counts"); err != nil {
		panic(err)
	}
	m.Close() // the pin keeps the map alive
	again, err := bpfmaps.LoadPinned[uint32, uint64]("/sys/fs/bpf/example_counts")
	if err != nil {
		panic(err)
	}
	defer again.Close()
	defer again.Unpin()
	v, _ := again.Lookup(1)
	fmt.Println(v)
}

func ExampleNewPerCPUArray() {
	m, err := bpfmaps.NewPerCPUArray[uint64](1)
	if err != nil {
		panic(err)
	}
	defer m.Close()
	// One value per possible CPU; CPUs not given are zero.
	_ = m.Put(0, []uint64{5, 6})
	vals, _ := m.Lookup(0)
	fmt.Println(len(vals) == m.CPUs(), bpfmaps.Sum(vals) == 5+6 || m.CPUs() == 1)
	// Output: true true
}

func ExampleNewPerCPUHash() {
	m, err := bpfmaps.NewPerCPUHash[uint32, uint32](16)
	if err != nil {
		panic(err)
	}
	defer m.Close()
	_ = m.Put(1, []uint32{3})
	vals, err := m.Lookup(1)
	fmt.Println(bpfmaps.Sum(vals), err)
	// Output: 3 <nil>
}

func ExampleNewLRUPerCPUHash() {
	m, err := bpfmaps.NewLRUPerCPUHash[uint32, uint64](16)
	if err != nil {
		panic(err)
	}
	defer m.Close()
	_ = m.Put(9, []uint64{1})
	var err2 error
	for k, vals := range m.All(&err2) {
		fmt.Println(k, bpfmaps.Sum(vals))
	}
	// Output: 9 1
}

func ExampleNewPerCPU() {
	m, err := bpfmaps.NewPerCPU[uint32, uint64](&ebpf.MapSpec{Name: "hits", Type: ebpf.PerCPUHash, MaxEntries: 8})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	// err reads `lookup PerCPUHash map "hits" (id 17): key does not exist`.
	_, err = m.Lookup(1)
	fmt.Println(errors.Is(err, bpfmaps.ErrKeyNotExist))
	// Output: true
}

func ExampleOpenPerCPU() {
	raw, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	if err != nil {
		panic(err)
	}
	defer raw.Close()
	m, err := bpfmaps.OpenPerCPU[uint32, uint32](raw)
	if err != nil {
		panic(err)
	}
	defer m.Close()
	vals, err := m.Lookup(1)
	fmt.Println(bpfmaps.Sum(vals), err)
	// Output: 0 <nil>
}

func ExampleNewLPMTrie() {
	routes, err := bpfmaps.NewLPMTrie[[4]byte, uint32](16)
	if err != nil {
		panic(err)
	}
	defer routes.Close()
	_ = routes.Put(bpfmaps.LPMKey[[4]byte]{Prefix: 8, Data: [4]byte{10}}, 1)
	_ = routes.Put(bpfmaps.LPMKey[[4]byte]{Prefix: 16, Data: [4]byte{10, 7}}, 2)
	// Look up a full address: the longest matching prefix answers.
	hop, err := routes.Lookup(bpfmaps.LPMKey[[4]byte]{Prefix: 32, Data: [4]byte{10, 7, 1, 1}})
	fmt.Println(hop, err)
	// Output: 2 <nil>
}

func ExampleNewHashOfMaps() {
	inner := &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1}
	outer, err := bpfmaps.NewHashOfMaps[uint32](8, inner)
	if err != nil {
		panic(err)
	}
	defer outer.Close()
	m, err := ebpf.NewMap(inner)
	if err != nil {
		panic(err)
	}
	defer m.Close()
	_ = outer.Put(100, m)
	var err2 error
	fmt.Println(slices.Collect(outer.Keys(&err2)), err2)
	// Output: [100] <nil>
}

func ExampleNewArrayOfMaps() {
	inner := &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 4}
	outer, err := bpfmaps.NewArrayOfMaps(2, inner)
	if err != nil {
		panic(err)
	}
	defer outer.Close()
	_, err = outer.Lookup(0)
	fmt.Println(errors.Is(err, bpfmaps.ErrKeyNotExist))
	// Output: true
}

func ExampleOpenMapOfMaps() {
	raw, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.HashOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 2,
		InnerMap: &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1}})
	if err != nil {
		panic(err)
	}
	defer raw.Close()
	outer, err := bpfmaps.OpenMapOfMaps[uint32](raw)
	if err != nil {
		panic(err)
	}
	defer outer.Close()
	fmt.Println(errors.Is(outer.Delete(1), bpfmaps.ErrKeyNotExist))
	// Output: true
}

func ExampleNewBloomFilter() {
	seen, err := bpfmaps.NewBloomFilter[uint64](1000, 0)
	if err != nil {
		panic(err)
	}
	defer seen.Close()
	_ = seen.Push(42)
	ok, err := seen.Contains(42)
	fmt.Println(ok, err)
	// Output: true <nil>
}

func ExampleOpenBloomFilter() {
	raw, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.BloomFilter, ValueSize: 4, MaxEntries: 100})
	if err != nil {
		panic(err)
	}
	defer raw.Close()
	b, err := bpfmaps.OpenBloomFilter[uint32](raw)
	if err != nil {
		panic(err)
	}
	defer b.Close()
	ok, err := b.Contains(7)
	fmt.Println(ok, err)
	// Output: false <nil>
}

func ExampleLoadPinnedQueue() {
	// Needs a bpffs at /sys/fs/bpf (mount -t bpf bpf /sys/fs/bpf).
	q, err := bpfmaps.NewQueue[uint64](8)
	if err != nil {
		panic(err)
	}
	_ = q.Push(42)
	if err := q.Pin("/sys/fs/bpf/example_queue"); err != nil {
		panic(err)
	}
	q.Close() // the pin keeps the queue alive
	again, err := bpfmaps.LoadPinnedQueue[uint64]("/sys/fs/bpf/example_queue")
	if err != nil {
		panic(err)
	}
	defer again.Close()
	defer again.Unpin() // removes the pin: the queue goes with the last descriptor
	v, _ := again.Pop()
	fmt.Println(v)
}

func ExampleLoadPinnedStack() {
	// Needs a bpffs at /sys/fs/bpf; a program's pinned stack of uint32.
	s, err := bpfmaps.LoadPinnedStack[uint32]("/sys/fs/bpf/undo")
	if err != nil {
		panic(err)
	}
	defer s.Close()
	v, err := s.Pop()
	fmt.Println(v, err)
}

func ExampleLoadPinnedPerCPU() {
	// Needs a bpffs at /sys/fs/bpf; a program's pinned per-CPU counters.
	m, err := bpfmaps.LoadPinnedPerCPU[uint32, uint64]("/sys/fs/bpf/counters")
	if err != nil {
		panic(err)
	}
	defer m.Close()
	v, err := m.Lookup(0)
	fmt.Println(bpfmaps.Sum(v), err)
}

func ExampleLoadPinnedMapOfMaps() {
	// Needs a bpffs at /sys/fs/bpf; a program's pinned hash of maps.
	m, err := bpfmaps.LoadPinnedMapOfMaps[uint32]("/sys/fs/bpf/tenants")
	if err != nil {
		panic(err)
	}
	defer m.Close()
	inner, err := m.Lookup(7)
	if err != nil {
		panic(err)
	}
	defer inner.Close()
	fmt.Println(inner.Type())
}

func ExampleLoadPinnedBloomFilter() {
	// Needs a bpffs at /sys/fs/bpf; a program's pinned bloom filter.
	b, err := bpfmaps.LoadPinnedBloomFilter[uint64]("/sys/fs/bpf/seen")
	if err != nil {
		panic(err)
	}
	defer b.Close()
	ok, err := b.Contains(42)
	fmt.Println(ok, err)
}
