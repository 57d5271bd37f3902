package pump_test

import (
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/bpfchan/bpfchan/internal/codec"
	"github.com/bpfchan/bpfchan/internal/producer"
	"github.com/bpfchan/bpfchan/pump"
)

type rec64 struct {
	Seq uint64
	Pad [56]byte
}

// rawReader is the raw cilium path: ReadInto into a reused record, then a
// copy into the typed value (the codec's direct copy).
type rawReader[T any] struct {
	rd  *ringbuf.Reader
	rec ringbuf.Record
	cd  codec.Codec[T]
	v   T
}

func newRawReader[T any](b *testing.B, rb *ebpf.Map) *rawReader[T] {
	rd, err := ringbuf.NewReader(rb)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rd.Close() })
	cd, err := codec.For[T]()
	if err != nil {
		b.Fatal(err)
	}
	return &rawReader[T]{rd: rd, cd: cd}
}

func (r *rawReader[T]) read(b *testing.B) uint64 {
	if err := r.rd.ReadInto(&r.rec); err != nil {
		b.Fatal(err)
	}
	if err := r.cd.Decode(r.rec.RawSample, &r.v); err != nil {
		b.Fatal(err)
	}
	return *(*uint64)(unsafe.Pointer(&r.v))
}

// BenchmarkRingConsumer: the ring is pre-filled, the consumer is the
// bottleneck. ns/op is the pump's cost per record (RingBufBatches, batches
// recycled); raw-ns/rec is ReadInto+decode in the same run; x-raw their
// ratio (target <= 1.4).
func BenchmarkRingConsumer(b *testing.B) {
	b.Run("16B", func(b *testing.B) { benchConsumer[rec16](b, 16) })
	b.Run("64B", func(b *testing.B) { benchConsumer[rec64](b, 64) })
	b.Run("256B", func(b *testing.B) { benchConsumer[rec256](b, 256) })
}

func benchConsumer[T any](b *testing.B, size int) {
	const ringSize = 16 << 20
	chunk := ringSize / (size + 8) * 9 / 10
	pumpRing, rawRing := newRing(b, ringSize), newRing(b, ringSize)
	pp, rp := ringProducer(b, pumpRing, size), ringProducer(b, rawRing, size)
	raw := newRawReader[T](b, rawRing)
	src, err := pump.RingBufBatches[T](b.Context(), pumpRing, benchOpts...)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	var rawTime, pumpTime time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(chunk, b.N-done)
		b.StopTimer()
		if err := rp.Run(n); err != nil {
			b.Fatal(err)
		}
		// The raw consumer runs on its own goroutine, like the pump: both
		// read a ring the producer wrote from another goroutine's CPU.
		t0 := time.Now()
		rawDone := make(chan struct{})
		go func() {
			for range n {
				raw.read(b)
			}
			close(rawDone)
		}()
		<-rawDone
		rawTime += time.Since(t0)
		// The pump, parked or blocked on its one batch in hand, drains the
		// full ring once the consumer starts receiving.
		if err := pp.Run(n); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 = time.Now()
		for got := 0; got < n; {
			batch := <-src.C()
			got += len(batch)
			src.Recycle(batch)
		}
		pumpTime += time.Since(t0)
		done += n
	}
	b.StopTimer()
	report(b, pumpTime, rawTime, b.N)
}

func report(b *testing.B, pumpTime, rawTime time.Duration, n int) {
	b.ReportMetric(float64(rawTime.Nanoseconds())/float64(n), "raw-ns/rec")
	b.ReportMetric(float64(pumpTime.Nanoseconds())/float64(n), "pump-ns/rec")
	b.ReportMetric(float64(pumpTime)/float64(rawTime), "x-raw")
}

// BenchmarkRingProducer: a BPF producer runs concurrently and is the
// bottleneck. x-raw is the raw consumer's throughput over the pump's
// (target >= 0.95 as throughput, i.e. time ratio <= 1/0.95), for
// RingBufBatches and RingBuf.
func BenchmarkRingProducer(b *testing.B) {
	b.Run("16B", func(b *testing.B) { benchProducer[rec16](b, 16) })
	b.Run("64B", func(b *testing.B) { benchProducer[rec64](b, 64) })
	b.Run("256B", func(b *testing.B) { benchProducer[rec256](b, 256) })
}

func benchProducer[T any](b *testing.B, size int) {
	n := max(b.N, 1000)
	// Each path gets its own ring and producer; the producer runs in chunks
	// on its own goroutine while the consumer takes records as they come.
	// Records a consumer fell too far behind for (a full 64 MiB ring) are
	// reported as <path>-lost-recs; the consumer stops when it has all the
	// others.
	lost := map[string]uint64{}
	// measure runs the producer on its own goroutine and consume on this
	// one. consume sets up, then calls tg.begin (the clock starts, the
	// producer runs); tg.finished is closed once the producer is done, and
	// tg.want is then how many records consume must get (n less what the
	// producer lost). consume returns how many it got and when it had the
	// last of them. onDone, if consume set it before begin, runs on the
	// producer's goroutine when it is done.
	type target struct {
		begin    func()
		finished <-chan struct{}
		want     func() int
	}
	measure := func(name string, consume func(ring *ebpf.Map, tg target, onDone *func()) (int, time.Time)) time.Duration {
		ring := newRing(b, 64<<20)
		p := ringProducer(b, ring, size)
		var want atomic.Int64
		want.Store(int64(n))
		finished := make(chan struct{})
		onDone := func() {}
		errc := make(chan error, 1)
		start := make(chan struct{})
		go func() {
			<-start
			var err error
			for sent := 0; sent < n && err == nil; sent += producerChunk {
				err = p.Run(min(producerChunk, n-sent))
			}
			_, lost, _ := p.Counts()
			want.Store(int64(n) - int64(lost))
			close(finished)
			onDone()
			errc <- err
		}()
		var t0 time.Time
		tg := target{
			begin:    func() { t0 = time.Now(); close(start) },
			finished: finished,
			want:     func() int { return int(want.Load()) },
		}
		got, end := consume(ring, tg, &onDone)
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		if got != int(want.Load()) {
			b.Fatalf("%s: received %d records, want %d", name, got, want.Load())
		}
		lost[name] += uint64(n - got)
		return end.Sub(t0)
	}
	// The raw consumer blocks in ReadInto with no deadline (it sets none
	// per record). It ends when it has all n records or, after the
	// producer lost some, at the ErrFlushed the producer's Flush causes
	// once every record left in the ring has been read.
	rawTime := measure("raw", func(ring *ebpf.Map, tg target, onDone *func()) (int, time.Time) {
		raw := newRawReader[T](b, ring)
		*onDone = func() { raw.rd.Flush() }
		tg.begin()
		got := 0
		for got < n {
			err := raw.rd.ReadInto(&raw.rec)
			if errors.Is(err, ringbuf.ErrFlushed) {
				if got >= tg.want() {
					break
				}
				continue
			}
			if err != nil {
				b.Fatal(err)
			}
			if err := raw.cd.Decode(raw.rec.RawSample, &raw.v); err != nil {
				b.Fatal(err)
			}
			got++
		}
		return got, time.Now()
	})
	// The pump paths range over C(). The time is taken when the consumer
	// has every record; it then closes the pump. After the producer lost
	// some, Close (once the producer is done) delivers what the ring
	// still holds and ends the loop.
	closeWhenDone := func(src interface{ Close() error }, tg target) (wait func()) {
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			select {
			case <-tg.finished:
			case <-stop:
			}
			if err := src.Close(); err != nil {
				b.Error(err)
			}
		}()
		return func() { close(stop); <-done }
	}
	batchTime := measure("batches", func(ring *ebpf.Map, tg target, _ *func()) (int, time.Time) {
		src, err := pump.RingBufBatches[T](b.Context(), ring)
		if err != nil {
			b.Fatal(err)
		}
		wait := closeWhenDone(src, tg)
		tg.begin()
		got, end := 0, time.Time{}
		for batch := range src.C() {
			got += len(batch)
			src.Recycle(batch)
			if got == n {
				end = time.Now()
			}
		}
		if got < n {
			end = time.Now()
		}
		wait()
		return got, end
	})
	singleTime := measure("single", func(ring *ebpf.Map, tg target, _ *func()) (int, time.Time) {
		src, err := pump.RingBuf[T](b.Context(), ring, pump.WithBuffer(1024))
		if err != nil {
			b.Fatal(err)
		}
		wait := closeWhenDone(src, tg)
		tg.begin()
		got, end := 0, time.Time{}
		for range src.C() {
			got++
			if got == n {
				end = time.Now()
			}
		}
		if got < n {
			end = time.Now()
		}
		wait()
		return got, end
	})
	b.ReportMetric(float64(rawTime.Nanoseconds())/float64(n), "raw-ns/rec")
	b.ReportMetric(float64(batchTime.Nanoseconds())/float64(n), "batches-ns/rec")
	b.ReportMetric(float64(singleTime.Nanoseconds())/float64(n), "single-ns/rec")
	b.ReportMetric(float64(rawTime)/float64(batchTime), "batches-x-raw-throughput")
	b.ReportMetric(float64(rawTime)/float64(singleTime), "single-x-raw-throughput")
	for name, l := range lost {
		b.ReportMetric(float64(l), name+"-lost-recs")
	}
}

// BenchmarkRingLatency: one record produced, then the time until a
// goroutine holds it; raw is a consumer blocked in ReadInto (cilium's
// epoll_wait), pump a RingBuf pump parked in the netpoller. Medians and p99
// in µs.
func BenchmarkRingLatency(b *testing.B) {
	n := max(b.N, 200)
	rawRing := newRing(b, 1<<20)
	rp := ringProducer(b, rawRing, 16)
	raw := newRawReader[rec16](b, rawRing)
	rawLat := measureLatency(b, n, rp, func() { raw.read(b) })

	ring := newRing(b, 1<<20)
	pp := ringProducer(b, ring, 16)
	src, err := pump.RingBuf[rec16](b.Context(), ring)
	if err != nil {
		b.Fatal(err)
	}
	pumpLat := measureLatency(b, n, pp, func() { <-src.C() })
	if err := src.Close(); err != nil {
		b.Fatal(err)
	}
	rm, r99 := quantiles(rawLat)
	pm, p99 := quantiles(pumpLat)
	b.ReportMetric(rm, "raw-median-µs")
	b.ReportMetric(r99, "raw-p99-µs")
	b.ReportMetric(pm, "pump-median-µs")
	b.ReportMetric(p99, "pump-p99-µs")
	b.ReportMetric(pm-rm, "median-over-raw-µs")
	b.ReportMetric(p99-r99, "p99-over-raw-µs")
}

// measureLatency runs n rounds: the producer stamps the time and produces
// one record; a consumer goroutine takes it (take) and records the delay.
func measureLatency(b *testing.B, n int, p *producer.Producer, take func()) []time.Duration {
	return measurePaced(b, n, p, take, nil)
}

// measurePaced is measureLatency with pause(i), if not nil, called before
// round i is stamped (pacing, not synchronisation).
func measurePaced(b *testing.B, n int, p *producer.Producer, take func(), pause func(i int)) []time.Duration {
	var start atomic.Int64
	lat := make([]time.Duration, 0, n)
	ack := make(chan struct{})
	go func() {
		for range n {
			take()
			lat = append(lat, time.Duration(time.Now().UnixNano()-start.Load()))
			ack <- struct{}{}
		}
		close(ack)
	}()
	for i := range n {
		if pause != nil {
			pause(i)
		}
		start.Store(time.Now().UnixNano())
		if err := p.Run(1); err != nil {
			b.Fatal(err)
		}
		<-ack
	}
	<-ack
	return lat
}

func quantiles(d []time.Duration) (median, p99 float64) {
	s := slices.Clone(d)
	slices.Sort(s)
	us := func(i int) float64 { return float64(s[min(i, len(s)-1)].Nanoseconds()) / 1e3 }
	return us(len(s) / 2), us(len(s) * 99 / 100)
}

var benchOpts []pump.Option

// producerChunk is how many records the producer writes per Program.Run in
// the producer-bound benchmark. Each Run also costs a few syscalls, which
// paces the producer at a rate every consumer path can follow.
const producerChunk = 256
