package watch

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

const benchEntries = 1 << 16

// rawSweep reads all of m with cilium/ebpf's BatchLookup, 1024 entries per
// call: the bare path a watcher's poll is compared with.
func rawSweep(tb testing.TB, m *ebpf.Map, keys []uint32, vals []uint64) int {
	var cursor ebpf.MapBatchCursor
	total := 0
	for {
		n, err := m.BatchLookup(&cursor, keys, vals, nil)
		total += n
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return total
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// benchWatcher returns a whole-map watcher whose goroutine is not started,
// with its baseline read, so the benchmark can call poll directly.
func benchWatcher(b *testing.B, m *ebpf.Map) *Watcher[Event[uint32, uint64]] {
	w, _, err := newMap[uint32, uint64](context.Background(), m, nil)
	must(b, err)
	b.Cleanup(func() { must(b, w.src.Close()) })
	_, err = w.poll(nil)
	must(b, err)
	if _, err := w.poll(w.emit); err != nil { // warm
		b.Fatal(err)
	}
	return w
}

// BenchmarkPollHash64k: one poll (batch sweep + diff, nothing changed) of a
// full 64k-entry hash map, against a bare BatchLookup sweep of the same map
// run between the polls. x-raw is poll time / sweep time.
func BenchmarkPollHash64k(b *testing.B) {
	m := hash(b, benchEntries)
	fill(b, m, benchEntries)
	w := benchWatcher(b, m)
	keys, vals := make([]uint32, 1024), make([]uint64, 1024)
	var polls, raws time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		n, err := w.poll(w.emit)
		polls += time.Since(t0)
		if err != nil || n != 0 {
			b.Fatalf("poll: %d changes, %v", n, err)
		}
		b.StopTimer()
		t0 = time.Now()
		if got := rawSweep(b, m, keys, vals); got != benchEntries {
			b.Fatalf("raw sweep read %d entries", got)
		}
		raws += time.Since(t0)
		b.StartTimer()
	}
	b.ReportMetric(float64(raws.Nanoseconds())/float64(b.N), "raw-ns/op")
	b.ReportMetric(float64(polls)/float64(raws), "x-raw")
}

// BenchmarkPollMmapArray64k: one poll of a 64k-entry BPF_F_MMAPABLE array
// (its shared memory compared in place, nothing changed), against a bare
// BatchLookup sweep of the same array (x-faster-than-sweep), of a 64k-entry
// hash map (x-faster-than-hash-sweep) and a bare copy of its memory through
// cilium/ebpf's Memory.ReadAt (x-raw-mem = poll time / copy time).
func BenchmarkPollMmapArray64k(b *testing.B) {
	m := mkMap(b, &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: benchEntries, Flags: unix.BPF_F_MMAPABLE})
	fill(b, m, benchEntries)
	w := benchWatcher(b, m)
	b.ReportAllocs()
	for b.Loop() {
		if n, err := w.poll(w.emit); err != nil || n != 0 {
			b.Fatalf("poll: %d changes, %v", n, err)
		}
	}
	// The benchmark's own timer: a wall clock around b.Loop would add its
	// start-up cost, which dominates at -benchtime 1x.
	poll := b.Elapsed() / time.Duration(b.N)

	keys, vals := make([]uint32, 1024), make([]uint64, 1024)
	const sweeps = 5
	t0 := time.Now()
	for range sweeps {
		if got := rawSweep(b, m, keys, vals); got != benchEntries {
			b.Fatalf("raw sweep read %d entries", got)
		}
	}
	sweep := time.Since(t0) / sweeps

	h := hash(b, benchEntries)
	fill(b, h, benchEntries)
	t0 = time.Now()
	for range sweeps {
		if got := rawSweep(b, h, keys, vals); got != benchEntries {
			b.Fatalf("raw sweep read %d entries", got)
		}
	}
	hashSweep := time.Since(t0) / sweeps

	mem, err := m.Memory() // cilium's copy-out view: the raw read
	must(b, err)
	buf := make([]byte, benchEntries*8)
	reads := max(b.N, 100)
	t0 = time.Now()
	for range reads {
		if _, err := mem.ReadAt(buf, 0); err != nil {
			b.Fatal(err)
		}
	}
	read := time.Since(t0) / time.Duration(reads)
	b.ReportMetric(float64(sweep)/float64(poll), "x-faster-than-sweep")
	b.ReportMetric(float64(hashSweep)/float64(poll), "x-faster-than-hash-sweep")
	b.ReportMetric(float64(poll)/float64(read), "x-raw-mem")
}

// BenchmarkPollKey: one poll of a key watcher (one lookup syscall) against
// cilium/ebpf's Lookup of the same key.
func BenchmarkPollKey(b *testing.B) {
	m := hash(b, 8)
	must(b, m.Put(uint32(1), uint64(1)))
	tg, err := open[uint32, uint64](m, DefaultKeyInterval, nil)
	must(b, err)
	kp, err := tg.key(1)
	must(b, err)
	defer kp.Close()
	if _, err := kp.Poll(nil); err != nil {
		b.Fatal(err)
	}
	var polls, raws time.Duration
	var v uint64
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if _, err := kp.Poll(nil); err != nil {
			b.Fatal(err)
		}
		polls += time.Since(t0)
		b.StopTimer()
		t0 = time.Now()
		must(b, m.Lookup(uint32(1), &v))
		raws += time.Since(t0)
		b.StartTimer()
	}
	b.ReportMetric(float64(polls)/float64(raws), "x-raw")
}

// BenchmarkPollHash64kChanged: one poll of a full 64k-entry hash map in which
// 64 values changed since the previous poll (changed untimed, with a batch
// update), including merging the changes into the pending queue. x-raw is
// poll time / a bare BatchLookup sweep.
func BenchmarkPollHash64kChanged(b *testing.B) {
	m := hash(b, benchEntries)
	fill(b, m, benchEntries)
	w := benchWatcher(b, m)
	keys, vals := make([]uint32, 1024), make([]uint64, 1024)
	ukeys, uvals := make([]uint32, 64), make([]uint64, 64)
	var polls, raws time.Duration
	round := uint64(0)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		round++
		for i := range ukeys {
			ukeys[i] = uint32(i*1021) % benchEntries
			uvals[i] = round
		}
		if _, err := m.BatchUpdate(ukeys, uvals, nil); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		rawSweep(b, m, keys, vals)
		raws += time.Since(t0)
		b.StartTimer()
		t0 = time.Now()
		n, err := w.poll(w.emit)
		polls += time.Since(t0)
		if err != nil || n != len(ukeys) {
			b.Fatalf("poll: %d changes, %v", n, err)
		}
	}
	b.ReportMetric(float64(polls)/float64(raws), "x-raw")
}
