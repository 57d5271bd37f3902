package pump_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/bpfchan/bpfchan/pump"
)

// BenchmarkAckedConsumer: pre-filled rings, the consumer the bottleneck.
// RingBufAcked with an Ack and a Recycle after every batch against
// RingBufBatches (recycling too) in the same run; x-batches is acked's
// throughput over batches' (target >= 0.8), with 0 allocations per record.
func BenchmarkAckedConsumer(b *testing.B) {
	b.Run("16B", func(b *testing.B) { benchAcked[rec16](b, 16) })
	b.Run("64B", func(b *testing.B) { benchAcked[rec64](b, 64) })
	b.Run("256B", func(b *testing.B) { benchAcked[rec256](b, 256) })
}

func benchAcked[T any](b *testing.B, size int) {
	const ringSize = 16 << 20
	chunk := ringSize / (size + 8) * 9 / 10
	ackRing, batchRing := newRing(b, ringSize), newRing(b, ringSize)
	ap, bp := ringProducer(b, ackRing, size), ringProducer(b, batchRing, size)
	as, err := pump.RingBufAcked[T](b.Context(), ackRing)
	if err != nil {
		b.Fatal(err)
	}
	defer as.Close()
	bs, err := pump.RingBufBatches[T](b.Context(), batchRing)
	if err != nil {
		b.Fatal(err)
	}
	defer bs.Close()
	var ackTime, batchTime time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(chunk, b.N-done)
		b.StopTimer()
		run(b, bp, n)
		t0 := time.Now()
		for got := 0; got < n; {
			batch := <-bs.C()
			got += len(batch)
			bs.Recycle(batch)
		}
		batchTime += time.Since(t0)
		run(b, ap, n)
		b.StartTimer()
		t0 = time.Now()
		for got := 0; got < n; {
			batch := <-as.C()
			got += len(batch)
			if err := as.Ack(batch[len(batch)-1].Pos); err != nil {
				b.Fatal(err)
			}
			as.Recycle(batch)
		}
		ackTime += time.Since(t0)
		done += n
	}
	b.StopTimer()
	b.ReportMetric(float64(batchTime.Nanoseconds())/float64(b.N), "batches-ns/rec")
	b.ReportMetric(float64(ackTime.Nanoseconds())/float64(b.N), "acked-ns/rec")
	b.ReportMetric(float64(batchTime)/float64(ackTime), "x-batches")
}

// BenchmarkAckedLatency: one record produced, then the time until a
// goroutine holds it. ringbuf is a RingBuf pump; acked an AckSource whose
// receiver acks at once (nothing outstanding when the record comes); and
// outstanding an AckSource whose receiver acks each record 100 µs after it
// got it (a "publish"), while the next record is produced right after the
// receipt: the kernel sends no wake-up for it (it is not at the published
// position), the Ack is what makes the pump look. Targets: acked's median
// within 10 µs of ringbuf's; outstanding's median <= 100 µs + ringbuf's +
// 10 µs, p99 far below the 100 ms drain. Medians and p99 in µs.
func BenchmarkAckedLatency(b *testing.B) {
	n := max(b.N, 200)
	ring := newRing(b, 1<<20)
	rp := ringProducer(b, ring, 16)
	src, err := pump.RingBuf[rec16](b.Context(), ring)
	if err != nil {
		b.Fatal(err)
	}
	ringLat := measureLatency(b, n, rp, func() { <-src.C() })
	if err := src.Close(); err != nil {
		b.Fatal(err)
	}

	aring := newRing(b, 1<<20)
	ap := ringProducer(b, aring, 16)
	as, err := pump.RingBufAcked[rec16](b.Context(), aring)
	if err != nil {
		b.Fatal(err)
	}
	ackLat := measureLatency(b, n, ap, func() {
		batch := <-as.C()
		if err := as.Ack(batch[len(batch)-1].Pos); err != nil {
			b.Error(err)
		}
		as.Recycle(batch)
	})
	if err := as.Close(); err != nil {
		b.Fatal(err)
	}

	oring := newRing(b, 1<<20)
	op := ringProducer(b, oring, 16)
	os, err := pump.RingBufAcked[rec16](b.Context(), oring)
	if err != nil {
		b.Fatal(err)
	}
	outLat := outstandingLatency(b, n, op, os)
	if err := os.Close(); err != nil {
		b.Fatal(err)
	}

	for _, l := range []struct {
		name string
		d    []time.Duration
	}{{"ringbuf", ringLat}, {"acked", ackLat}, {"outstanding", outLat}} {
		m, p := quantiles(l.d)
		b.ReportMetric(m, l.name+"-median-µs")
		b.ReportMetric(p, l.name+"-p99-µs")
	}
}

// outstandingLatency: the receiver gets record i, lets the producer write
// record i+1 at once, acks record i 100 µs after it got it, and measures
// how long record i+1 took from its production to its receipt.
func outstandingLatency(b *testing.B, n int, p interface{ Run(int) error }, s *pump.AckSource[rec16]) []time.Duration {
	const publish = 100 * time.Microsecond
	var start atomic.Int64
	produce := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		for range produce {
			start.Store(time.Now().UnixNano())
			if err := p.Run(1); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	lat := make([]time.Duration, 0, n)
	produce <- struct{}{}
	batch := <-s.C()
	for i := range n {
		got := time.Now()
		if i < n-1 {
			produce <- struct{}{}
		}
		for time.Since(got) < publish {
		} // the publish this receiver waits for before it acks
		if err := s.Ack(batch[len(batch)-1].Pos); err != nil {
			b.Fatal(err)
		}
		s.Recycle(batch)
		if i == n-1 {
			break
		}
		batch = <-s.C()
		lat = append(lat, time.Duration(time.Now().UnixNano()-start.Load()))
	}
	close(produce)
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return lat
}
