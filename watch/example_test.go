package watch_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/watch"
)

func newHash() *ebpf.Map {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "flags", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 64})
	if err != nil {
		panic(err)
	}
	return m
}

// Wait for a BPF program (here, another goroutine) to publish a value.
func ExampleKey() {
	m := newHash()
	defer m.Close()

	var wg sync.WaitGroup
	wg.Go(func() { _ = m.Put(uint32(7), uint64(42)) })
	defer wg.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := watch.Key[uint32, uint64](ctx, m, 7, watch.WithInterval(time.Millisecond))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("key 7 =", v)
	// Output: key 7 = 42
}

// Follow one key: its updates, its deletion and its re-creation. The
// watcher runs under a ctx the consumer cancels to leave early (Close, like
// a pump's, would wait for a receiver to take what is pending).
func ExampleChanges() {
	m := newHash()
	defer m.Close()
	_ = m.Put(uint32(1), uint64(100))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // an early return stops the watcher
	w, err := watch.Changes[uint32, uint64](ctx, m, 1,
		watch.WithInitial(), watch.WithInterval(time.Millisecond))
	if err != nil {
		fmt.Println(err)
		return
	}

	next := []func(){ // what changes the key after each change seen
		func() { _ = m.Put(uint32(1), uint64(200)) },
		func() { _ = m.Delete(uint32(1)) },
		func() { _ = m.Put(uint32(1), uint64(300)) },
	}
	for c := range w.C() {
		fmt.Printf("present=%v old=%d new=%d\n", c.Present, c.Old, c.New)
		if len(next) == 0 {
			cancel() // seen enough: the watcher stops at once and closes C()
			continue
		}
		next[0]()
		next = next[1:]
	}
	fmt.Println(w.Wait()) // context.Cause(ctx) after a cancel
	// Output:
	// present=true old=0 new=100
	// present=true old=100 new=200
	// present=false old=200 new=0
	// present=true old=0 new=300
	// context canceled
}

// Stream a whole map's changes.
func ExampleMap() {
	m := newHash()
	defer m.Close()
	_ = m.Put(uint32(1), uint64(10))

	w, err := watch.Map[uint32, uint64](context.Background(), m,
		watch.WithInitial(), watch.WithAdaptive(time.Millisecond, 50*time.Millisecond))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(<-w.C()) // the initial state
	_ = m.Put(uint32(2), uint64(20))
	fmt.Println(<-w.C())
	_ = m.Put(uint32(1), uint64(11))
	fmt.Println(<-w.C())
	_ = m.Delete(uint32(2))
	fmt.Println(<-w.C())

	if err := w.Close(); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("%d events\n", w.Stats().Events)
	// Output:
	// added 1: 10
	// added 2: 20
	// updated 1: 10 -> 11
	// deleted 2 (was 20)
	// 4 events
}
