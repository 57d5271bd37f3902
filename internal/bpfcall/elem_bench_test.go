package bpfcall

import (
	"errors"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/producer"
)

// BenchmarkPop drains a queue filled by a BPF program (not timed) three
// ways in the same run, a chunk each in turn (the order rotates): cilium's
// Map.LookupAndDelete, Pop (unix.Syscall) and PopRaw (unix.RawSyscall).
// ns/op is Pop's time per value. raw-x-syscall is PopRaw's time over Pop's
// (below 1: RawSyscall is faster); syscall-x-cilium is Pop's time over
// cilium's.
func BenchmarkPop(b *testing.B) {
	const chunk = 4096
	m := newMap(b, ebpf.Queue, 0, 8, chunk)
	p, err := producer.NewPush(m)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	buf := make([]byte, 8)
	var v uint64
	variants := []struct {
		pop func() error
		d   time.Duration
	}{
		{pop: func() error { return m.LookupAndDelete(nil, unsafe.Pointer(&v)) }},
		{pop: func() error { return errOf(Pop(m.FD(), buf)) }},
		{pop: func() error { return errOf(PopRaw(m.FD(), buf)) }},
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.StopTimer()
	n := 0
	for round := 0; n < b.N; round++ {
		for j := range variants {
			i := (j + round) % len(variants)
			if err := p.Run(chunk); err != nil {
				b.Fatal(err)
			}
			if i == 1 {
				b.StartTimer()
			}
			t0 := time.Now()
			for range chunk {
				if err := variants[i].pop(); err != nil {
					b.Fatal(err)
				}
			}
			variants[i].d += time.Since(t0)
			if i == 1 {
				b.StopTimer()
			}
		}
		n += chunk
	}
	cilium, sys, raw := variants[0].d, variants[1].d, variants[2].d
	b.ReportMetric(float64(cilium.Nanoseconds())/float64(n), "cilium-ns/value")
	b.ReportMetric(float64(raw.Nanoseconds())/float64(n), "raw-ns/value")
	b.ReportMetric(float64(raw)/float64(sys), "raw-x-syscall")
	b.ReportMetric(float64(sys)/float64(cilium), "syscall-x-cilium")
}

func errOf(e unix.Errno) error {
	if e != 0 {
		return e
	}
	return nil
}

// BenchmarkPeek: a peek at an empty queue, what the waiting goroutine does
// at every idle poller's map, through cilium's Lookup, Peek (Syscall) and
// PeekRaw (RawSyscall), interleaved in chunks in the same run. ns/op is
// Peek's.
func BenchmarkPeek(b *testing.B) {
	const chunk = 4096
	m := newMap(b, ebpf.Queue, 0, 8, 16)
	buf := make([]byte, 8)
	var v uint64
	variants := []struct {
		peek func() unix.Errno
		d    time.Duration
	}{
		{peek: func() unix.Errno {
			if err := m.Lookup(nil, unsafe.Pointer(&v)); errors.Is(err, ebpf.ErrKeyNotExist) {
				return unix.ENOENT
			}
			return 0
		}},
		{peek: func() unix.Errno { return Peek(m.FD(), buf) }},
		{peek: func() unix.Errno { return PeekRaw(m.FD(), buf) }},
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.StopTimer()
	n := 0
	for round := 0; n < b.N; round++ {
		for j := range variants {
			i := (j + round) % len(variants)
			if i == 1 {
				b.StartTimer()
			}
			t0 := time.Now()
			for range chunk {
				if e := variants[i].peek(); e != unix.ENOENT {
					b.Fatalf("variant %d: peek of an empty queue: %v, want ENOENT", i, e)
				}
			}
			variants[i].d += time.Since(t0)
			if i == 1 {
				b.StopTimer()
			}
		}
		n += chunk
	}
	cilium, sys, raw := variants[0].d, variants[1].d, variants[2].d
	b.ReportMetric(float64(cilium.Nanoseconds())/float64(n), "cilium-ns/peek")
	b.ReportMetric(float64(raw.Nanoseconds())/float64(n), "raw-ns/peek")
	b.ReportMetric(float64(raw)/float64(sys), "raw-x-syscall")
	b.ReportMetric(float64(sys)/float64(cilium), "syscall-x-cilium")
}
