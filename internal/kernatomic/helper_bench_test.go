package kernatomic_test

import (
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// rawPair is the racy read-modify-write every caller would otherwise write:
// a Lookup and a Put through cilium/ebpf.
func rawPair(b *testing.B, m *ebpf.Map, key []byte) {
	var v uint64
	if err := m.Lookup(key, &v); err != nil {
		b.Fatal(err)
	}
	v++
	if err := m.Put(key, v); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAdd compares one helper-program fetch-add (one syscall) with the
// raw Lookup+Put pair (two), and a sync/atomic add on an mmapped array with a
// raw Map.Update. Ratios are helper time over raw time.
func BenchmarkAdd(b *testing.B) {
	b.Run("helper-vs-pair", func(b *testing.B) {
		m := newMap(b, ebpf.Hash, 0, 4, 8, 4)
		s := slot(b, newHelper(b, m), key32(1))
		if _, _, err := s.Add(0); err != nil {
			b.Fatal(err)
		}
		ours, raw := compare(b, 1, func() {
			if _, _, err := s.Add(1); err != nil {
				b.Fatal(err)
			}
		}, func() { rawPair(b, m, key32(1)) })
		b.ReportMetric(ours, "ns/add")
		b.ReportMetric(raw, "ns/raw-pair")
		b.ReportMetric(ours/raw, "x-raw")
	})
	b.Run("load-vs-lookup", func(b *testing.B) {
		m := newMap(b, ebpf.Hash, 0, 4, 8, 4)
		s := slot(b, newHelper(b, m), key32(1))
		if _, _, err := s.Add(0); err != nil {
			b.Fatal(err)
		}
		var v uint64
		ours, raw := compare(b, 1, func() {
			if _, err := s.Load(); err != nil {
				b.Fatal(err)
			}
		}, func() {
			if err := m.Lookup(key32(1), &v); err != nil {
				b.Fatal(err)
			}
		})
		b.ReportMetric(ours/raw, "x-raw")
	})
	b.Run("mmap-vs-update", func(b *testing.B) {
		m := newMap(b, ebpf.Array, unix.BPF_F_MMAPABLE, 4, 8, 4)
		s := slot(b, newHelper(b, m), key32(1))
		ours, raw := compare(b, 1000, func() {
			if _, _, err := s.Add(1); err != nil {
				b.Fatal(err)
			}
		}, func() {
			if err := m.Update(uint32(1), uint64(1), ebpf.UpdateAny); err != nil {
				b.Fatal(err)
			}
		})
		b.ReportMetric(ours, "ns/add")
		b.ReportMetric(raw, "ns/raw-update")
		b.ReportMetric(raw/ours, "x-faster")
	})
}

// compare times ours for b.N calls with the benchmark's timer (so ns/op is
// ours) and raw for b.N/rawEvery calls (at least one), half before and half
// after, and returns both means in ns per call.
func compare(b *testing.B, rawEvery int, ours, raw func()) (oursNs, rawNs float64) {
	n := max(1, b.N/rawEvery)
	b.StopTimer()
	start := time.Now()
	for range n / 2 {
		raw()
	}
	elapsed := time.Since(start)
	b.ResetTimer()
	b.StartTimer()
	for range b.N {
		ours()
	}
	b.StopTimer()
	start = time.Now()
	for range n - n/2 {
		raw()
	}
	elapsed += time.Since(start)
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N), float64(elapsed.Nanoseconds()) / float64(n)
}
