package maps

import (
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/testenv"
)

// entryCompare runs ours b.N times and raw about b.N/rawEvery times (at least
// once), alternating blocks (256 ours, then 256/rawEvery raw, scaled up so
// each side runs at least a few hundred times in a row) so machine noise
// hits both alike. It reports ns per op of each, and the ratio ours/raw as
// "x-raw" (or raw/ours as "x-faster" when faster is set).
//
// raw(n) and ours(n) each run their op n times in a loop of their own, so
// the harness adds no indirect call per op.
func entryCompare(b *testing.B, rawEvery int, faster bool, raw, ours func(n int)) {
	b.Helper()
	block := 256 * rawEvery
	var rawD, ourD time.Duration
	rawN := 0
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(block, b.N-done)
		r := max(1, n/rawEvery)
		t0 := time.Now()
		raw(r)
		t1 := time.Now()
		ours(n)
		rawN += r
		ourD += time.Since(t1)
		rawD += t1.Sub(t0)
		done += n
	}
	b.StopTimer()
	ourNs := float64(ourD.Nanoseconds()) / float64(b.N)
	rawNs := float64(rawD.Nanoseconds()) / float64(rawN)
	b.ReportMetric(ourNs, "ns/entry-op")
	b.ReportMetric(rawNs, "ns/raw-op")
	if faster {
		b.ReportMetric(rawNs/ourNs, "x-faster")
	} else {
		b.ReportMetric(ourNs/rawNs, "x-raw")
	}
}

func benchEntryMap(b *testing.B, typ ebpf.MapType, flags uint32) *Map[uint32, uint64] {
	b.Helper()
	testenv.RequireBPF(b)
	m, err := New[uint32, uint64](&ebpf.MapSpec{Type: typ, Flags: flags, MaxEntries: 16})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	if err := m.Put(1, 0); err != nil {
		b.Fatal(err)
	}
	return m
}

// warm runs one op of e before the timer starts, so that loading the helper
// (or mapping the array) is not part of the figures, even with -benchtime 1x.
func warm(b *testing.B, e *Entry[uint32, uint64]) {
	b.Helper()
	if _, err := e.Load(); err != nil {
		b.Fatal(err)
	}
}

// rawPair is the racy read-modify-write written with cilium/ebpf directly:
// a Lookup then a Put, two syscalls.
func rawPair(b *testing.B, em *ebpf.Map) func(int) {
	return func(n int) {
		for range n {
			var v uint64
			if err := em.Lookup(uint32(1), &v); err != nil {
				b.Fatal(err)
			}
			if err := em.Put(uint32(1), v+1); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkEntryAdd: an integer Add on a hash map (one helper-program run)
// against cilium's Lookup+Put pair. Target: x-raw ≤ 1.0.
func BenchmarkEntryAdd(b *testing.B) {
	m := benchEntryMap(b, ebpf.Hash, 0)
	e := m.Entry(1)
	warm(b, e)
	entryCompare(b, 1, false, rawPair(b, m.Map()), func(n int) {
		for range n {
			if _, err := Add(e, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEntryUpdate: Update(+1) on a hash map (a load and a
// compare-and-swap, two helper runs) against the same pair. Target: x-raw ≤ 1.5.
func BenchmarkEntryUpdate(b *testing.B) {
	m := benchEntryMap(b, ebpf.Hash, 0)
	e := m.Entry(1)
	warm(b, e)
	entryCompare(b, 1, false, rawPair(b, m.Map()), func(n int) {
		for range n {
			if _, err := e.Update(func(v uint64) uint64 { return v + 1 }); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEntryUpdateUserspace: the non-atomic fallback's Update, for
// reference: the same two syscalls as the pair, plus the wrapper.
func BenchmarkEntryUpdateUserspace(b *testing.B) {
	m := benchEntryMap(b, ebpf.Hash, 0)
	e := m.Entry(1, userspace())
	warm(b, e)
	entryCompare(b, 1, false, rawPair(b, m.Map()), func(n int) {
		for range n {
			if _, err := e.Update(func(v uint64) uint64 { return v + 1 }); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEntryAddMmap: Add on a BPF_F_MMAPABLE array (sync/atomic on the
// shared memory) against cilium's Map.Update of the same element. Target:
// x-faster ≥ 100.
func BenchmarkEntryAddMmap(b *testing.B) {
	m := benchEntryMap(b, ebpf.Array, bpfFMmapable)
	e := m.Entry(1)
	warm(b, e)
	em := m.Map()
	var v uint64
	entryCompare(b, 256, true, func(n int) {
		for range n {
			v++
			if err := em.Update(uint32(1), v, ebpf.UpdateAny); err != nil {
				b.Fatal(err)
			}
		}
	}, func(n int) {
		for range n {
			if _, err := Add(e, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}
