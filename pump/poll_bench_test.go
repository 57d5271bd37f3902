package pump_test

import (
	"errors"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/bpfcall"
	"github.com/bpfchan/bpfchan/pump"
)

// BenchmarkQueueDrain: a pre-filled queue drained by a Queue pump (buffered
// C(), so the pump is the bottleneck) against a raw LookupAndDelete loop in
// the same run. rate-x-raw is the pump's drain rate over the raw loop's
// (target >= 0.9). To be fair the pump starts only once its queue is full:
// its time runs from the constructor (included) to the last value
// received, so no value is popped before the clock starts and none is left
// out.
//
// The pump pops with its own bpf(2) call, cheaper than cilium's
// LookupAndDelete; rate-x-syscall compares it with a loop making that same
// bare call, so the cost of the pump itself (the channel hand-off) is shown
// apart from what the cheaper call saves.
func BenchmarkQueueDrain(b *testing.B) {
	const chunk = 8192
	rawQ := newQueue(b, ebpf.Queue, 8, chunk)
	pumpQ := newQueue(b, ebpf.Queue, 8, chunk)
	sysQ := newQueue(b, ebpf.Queue, 8, chunk)
	rp, pp, sp := pushProducer(b, rawQ), pushProducer(b, pumpQ), pushProducer(b, sysQ)
	var rawTime, pumpTime, sysTime time.Duration
	b.ReportAllocs()
	for done := 0; done < b.N; {
		n := min(chunk, b.N-done)
		run(b, rp, n)
		t0 := time.Now()
		var v uint64
		for range n {
			if err := rawQ.LookupAndDelete(nil, unsafe.Pointer(&v)); err != nil {
				b.Fatal(err)
			}
		}
		rawTime += time.Since(t0)
		run(b, sp, n)
		buf := make([]byte, 8)
		t0 = time.Now()
		for range n {
			if e := bpfcall.PopRaw(sysQ.FD(), buf); e != 0 {
				b.Fatal(e)
			}
		}
		sysTime += time.Since(t0)
		run(b, pp, n)
		t0 = time.Now()
		src, err := pump.Queue[uint64](b.Context(), pumpQ, pump.WithBuffer(1024))
		if err != nil {
			b.Fatal(err)
		}
		for range n {
			<-src.C()
		}
		pumpTime += time.Since(t0)
		if err := src.Close(); err != nil {
			b.Fatal(err)
		}
		done += n
	}
	b.ReportMetric(float64(rawTime.Nanoseconds())/float64(b.N), "raw-ns/value")
	b.ReportMetric(float64(pumpTime.Nanoseconds())/float64(b.N), "pump-ns/value")
	b.ReportMetric(float64(sysTime.Nanoseconds())/float64(b.N), "syscall-ns/value")
	b.ReportMetric(float64(rawTime)/float64(pumpTime), "rate-x-raw")
	b.ReportMetric(float64(sysTime)/float64(pumpTime), "rate-x-syscall")
}

// BenchmarkWriterToSource: a value sent to a QueueWriter and received from
// a Queue pump of the same map in this process; the writer's push wakes the
// idle poller. Median and p99 in µs.
func BenchmarkWriterToSource(b *testing.B) {
	n := max(b.N, 200)
	m := newQueue(b, ebpf.Queue, 8, 64)
	w, err := pump.QueueWriter[uint64](b.Context(), m)
	if err != nil {
		b.Fatal(err)
	}
	src, err := pump.Queue[uint64](b.Context(), m, pump.WithPoll(time.Millisecond, 100*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, n)
	for i := range n {
		t0 := time.Now()
		w.C() <- uint64(i)
		<-src.C()
		lat = append(lat, time.Since(t0))
	}
	close(w.C())
	if err := errors.Join(w.Wait(), src.Close()); err != nil {
		b.Fatal(err)
	}
	med, p99 := quantiles(lat)
	b.ReportMetric(med, "median-µs")
	b.ReportMetric(p99, "p99-µs")
}

// BenchmarkQueueIdle: the CPU an idle Queue pump uses at the default
// backoff, in percent of one core: the process's CPU time over a 1 s
// window with the pump, less the same window without it (baseline-%core).
func BenchmarkQueueIdle(b *testing.B) {
	const window = time.Second
	usage := func() float64 {
		c0, t0 := cpuTime(b), time.Now()
		time.Sleep(window)
		return 100 * float64(cpuTime(b)-c0) / float64(time.Since(t0))
	}
	m := newQueue(b, ebpf.Queue, 8, 64)
	base := usage()
	src, err := pump.Queue[uint64](b.Context(), m)
	if err != nil {
		b.Fatal(err)
	}
	time.Sleep(4 * pump.DefaultPollMax) // let the backoff reach its maximum
	before := src.Stats()
	t0 := time.Now()
	with := usage()
	polls := src.Stats().EmptyPolls - before.EmptyPolls
	rate := float64(polls) / time.Since(t0).Seconds()
	if err := src.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(with-base, "%core")
	b.ReportMetric(base, "baseline-%core")
	b.ReportMetric(rate, "polls/s")
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
