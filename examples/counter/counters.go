package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/bpfchan/bpfchan/internal/producer"
	bpfmaps "github.com/bpfchan/bpfchan/maps"
)

// The event types, the keys of the stats map, as the lab numbers them.
const (
	eventSyscall   uint32 = 1
	eventPacket    uint32 = 2
	eventFileOpen  uint32 = 3
	eventFileClose uint32 = 4
)

// counter is one key of the stats map: its Entry, the BPF program that adds
// to it, and what the dashboard remembers about it.
type counter struct {
	key   uint32
	name  string
	delta int32 // what one run of the kernel program adds
	entry *bpfmaps.Entry[uint32, uint64]
	prog  *producer.Producer

	userAdds uint64 // added from userspace with maps.Add
	last     uint64 // value at the previous refresh
	window   []uint64
}

// counterSpecs are the lab's four counters. A packet event adds 10, as the
// lab's demo does with (swap! packets + 10); the others add 1.
var counterSpecs = []struct {
	key   uint32
	name  string
	delta int32
}{
	{eventSyscall, "syscalls", 1},
	{eventPacket, "packets", 10},
	{eventFileOpen, "file-opens", 1},
	{eventFileClose, "file-closes", 1},
}

// board is the stats map with its counters.
type board struct {
	stats    *bpfmaps.Map[uint32, uint64]
	counters []*counter
}

// newBoard creates the lab's stats map (4-byte keys, 8-byte values, 16
// entries), stores zero under every key (the lab's init-counters!) and loads
// one adding program per counter.
func newBoard() (*board, error) {
	stats, err := bpfmaps.NewHash[uint32, uint64](16)
	if err != nil {
		return nil, fmt.Errorf("create the stats map: %w", err)
	}
	b := &board{stats: stats}
	for _, s := range counterSpecs {
		c := &counter{key: s.key, name: s.name, delta: s.delta, entry: stats.Entry(s.key)}
		b.counters = append(b.counters, c)
		if err := c.entry.Store(0); err != nil {
			b.Close()
			return nil, fmt.Errorf("initialise %s: %w", s.name, err)
		}
		if c.prog, err = producer.NewHashAdd(stats.Map(), s.key, s.delta); err != nil {
			b.Close()
			return nil, fmt.Errorf("load the BPF program adding to %s: %w", s.name, err)
		}
	}
	return b, nil
}

// Close unloads the programs and closes the map.
func (b *board) Close() error {
	var errs []error
	for _, c := range b.counters {
		if c.prog != nil {
			errs = append(errs, c.prog.Close())
		}
	}
	return errors.Join(append(errs, b.stats.Close())...)
}

// selfTest is the lab's test-counter-refs on the syscalls counter, on the
// kernel map: Load, Store, Add, CompareAndSwap. It leaves every counter at
// zero (the lab's reset-all-counters!).
func (b *board) selfTest(out io.Writer) error {
	e := b.counters[0].entry
	fmt.Fprintf(out, "=== Testing maps.Entry on %s (kernel-atomic: %v) ===\n", b.counters[0].name, e.Atomic())
	check := func(what string, got, want any) error {
		if got != want {
			return fmt.Errorf("%s: got %v, want %v", what, got, want)
		}
		fmt.Fprintf(out, "%s: PASS\n", what)
		return nil
	}
	v, err := e.Load()
	if err != nil {
		return err
	}
	if err := check("Initial read", v, uint64(0)); err != nil {
		return err
	}
	if err := e.Store(100); err != nil {
		return err
	}
	if v, err = e.Load(); err != nil {
		return err
	}
	if err := check("Store 100", v, uint64(100)); err != nil {
		return err
	}
	if v, err = bpfmaps.Add(e, 1); err != nil {
		return err
	}
	if err := check("Add 1", v, uint64(101)); err != nil {
		return err
	}
	if v, err = e.Update(func(v uint64) uint64 { return v + 10 }); err != nil {
		return err
	}
	if err := check("Update +10", v, uint64(111)); err != nil {
		return err
	}
	ok, err := e.CompareAndSwap(111, 200)
	if err != nil {
		return err
	}
	if err := check("CompareAndSwap 111 -> 200", ok, true); err != nil {
		return err
	}
	if ok, err = e.CompareAndSwap(111, 300); err != nil {
		return err
	}
	if err := check("CompareAndSwap 111 -> 300 (stale)", ok, false); err != nil {
		return err
	}
	for _, c := range b.counters {
		if err := c.entry.Store(0); err != nil {
			return fmt.Errorf("reset %s: %w", c.name, err)
		}
	}
	fmt.Fprintln(out, "All counters reset")
	return nil
}

// kernelAdded returns what the counter's BPF program has added so far.
func (c *counter) kernelAdded() (runs, added uint64, err error) {
	attempted, lost, err := c.prog.Counts()
	if err != nil {
		return 0, 0, fmt.Errorf("read the counts of %s's program: %w", c.name, err)
	}
	runs = attempted - lost
	return runs, runs * uint64(c.delta), nil
}

// rolling records the change of the counter since the previous refresh and
// returns it with the average of the last size changes (the lab's exercise
// 3).
func (c *counter) rolling(v uint64, size int) (delta uint64, avg float64) {
	delta = v - c.last
	c.last = v
	c.window = append(c.window, delta)
	if len(c.window) > size {
		c.window = c.window[1:]
	}
	var sum uint64
	for _, d := range c.window {
		sum += d
	}
	return delta, float64(sum) / float64(len(c.window))
}
