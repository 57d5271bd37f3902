package pump_test

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/bpfcall"
	"github.com/bpfchan/bpfchan/internal/producer"
	"github.com/bpfchan/bpfchan/pump"
)

// idleWindow is how long the idle benchmarks measure: 10 s, or 1 s in a
// smoke run (-benchtime 1x) or with -short.
func idleWindow(b *testing.B) time.Duration {
	if b.N == 1 || testing.Short() {
		return time.Second
	}
	return 10 * time.Second
}

// measureIdle reports the process's CPU use over the window (%core: 100 is
// one core busy), its OS threads, and open descriptors, while nothing is
// produced.
// It returns the CPU time the process used over the window.
func measureIdle(b *testing.B, window time.Duration) time.Duration {
	debug.FreeOSMemory() // what earlier benchmarks left is not counted here
	c0, t0 := cpuTime(b), time.Now()
	time.Sleep(window) // the measurement window itself: nothing is synchronised on it
	used := cpuTime(b) - c0
	b.ReportMetric(100*float64(used)/float64(time.Since(t0)), "%core")
	b.ReportMetric(float64(count(b, "/proc/self/task")), "threads")
	b.ReportMetric(float64(count(b, "/proc/self/fd")), "fds")
	return used
}

func count(b *testing.B, dir string) int {
	ents, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	return len(ents)
}

// BenchmarkIdleRingPumps: N idle RingBuf pumps on N small rings, the
// callers' maps closed once the pumps run (each pump owns its clone: one
// descriptor per pump). Reports %core, OS threads and descriptors over the
// window (DESIGN rule 8; target: 5,000 pumps <= 2% of a core and <= 12
// threads). The open-file hard limit here is 20,000.
func BenchmarkIdleRingPumps(b *testing.B) {
	for _, n := range []int{10, 1000, 5000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			srcs := make([]*pump.Source[rec16], 0, n)
			defer func() {
				for _, s := range srcs {
					s.Close()
				}
			}()
			for range n {
				m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 4096})
				if err != nil {
					b.Fatalf("ring %d: %v", len(srcs), err)
				}
				s, err := pump.RingBuf[rec16](b.Context(), m)
				m.Close()
				if err != nil {
					b.Fatalf("pump %d: %v", len(srcs), err)
				}
				srcs = append(srcs, s)
			}
			time.Sleep(2 * pump.DefaultDrainInterval) // let every pump park
			measureIdle(b, idleWindow(b))
		})
	}
}

// BenchmarkIdleQueuePumps: N idle Queue pumps at default settings, the
// callers' maps closed once the pumps run. The waiting goroutine peeks each
// map once per DefaultPollMax (one bpf(2) call each): %core, threads, and
// the peeks per second per map (target: 1,000 pumps <= 3% of a core).
func BenchmarkIdleQueuePumps(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			srcs := idleQueuePumps(b, n)
			var polls0 uint64
			for _, s := range srcs {
				polls0 += s.Stats().Polls
			}
			t0 := time.Now()
			used := measureIdle(b, idleWindow(b))
			var polls uint64
			for _, s := range srcs {
				polls += s.Stats().Polls
			}
			b.ReportMetric(float64(polls-polls0)/time.Since(t0).Seconds()/float64(n), "polls/s/map")
			// What one look costs the process, against the bare peek it
			// cannot do without (the same call, in a loop, same run).
			look := float64(used) / float64(polls-polls0)
			bare := barePeek(b)
			b.ReportMetric(look/1e3, "look-µs")
			b.ReportMetric(bare/1e3, "bare-peek-µs")
			b.ReportMetric(look/bare, "x-bare-peek")
		})
	}
}

// barePeek is the CPU time of one peek at an empty queue, the poller's own
// call (bpfcall.PeekRaw), in a loop: what an idle poller's look cannot go
// below.
func barePeek(b *testing.B) float64 {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Queue, ValueSize: 8, MaxEntries: 16})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	const n = 20000
	buf := make([]byte, 8)
	c0 := cpuTime(b)
	for range n {
		if e := bpfcall.PeekRaw(m.FD(), buf); e != unix.ENOENT {
			b.Fatalf("peek of an empty queue: %v", e)
		}
	}
	return float64(cpuTime(b)-c0) / n
}

// BenchmarkIdleFullWriters: N QueueWriters blocked on N full queues (no
// consumer), default settings, the callers' maps closed once the writers
// run: %core and threads while each waits for room. Each retries its push
// once per look of the process's waiting goroutine (at most every
// DefaultPollMax), which wakes them all on one timer.
func BenchmarkIdleFullWriters(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ws := make([]*pump.Sink[uint64], 0, n)
			ctx, cancel := context.WithCancel(b.Context())
			defer func() {
				cancel()
				for _, w := range ws {
					w.Wait()
				}
			}()
			for range n {
				m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Queue, ValueSize: 8, MaxEntries: 1})
				if err != nil {
					b.Fatal(err)
				}
				w, err := pump.QueueWriter[uint64](ctx, m)
				m.Close()
				if err != nil {
					b.Fatal(err)
				}
				w.C() <- 1
				w.C() <- 2 // finds the map full
				ws = append(ws, w)
			}
			time.Sleep(4 * pump.DefaultPollMax) // let the backoff reach its maximum
			var r0 uint64
			for _, w := range ws {
				r0 += w.Stats().FullRetries
			}
			t0 := time.Now()
			measureIdle(b, idleWindow(b))
			var r uint64
			for _, w := range ws {
				r += w.Stats().FullRetries
			}
			b.ReportMetric(float64(r-r0)/time.Since(t0).Seconds()/float64(n), "retries/s/writer")
		})
	}
}

// BenchmarkRingLatencyBesidePollers: the wake-up latency of one ring
// record (as BenchmarkRingLatency's pump side) in a process that also runs
// 1,000 idle Queue pumps, whose peeks the waiting goroutine makes every
// 100 ms in one sweep (about 1,000 syscalls), against the same pump alone
// in the same run. Rounds are spread over a few seconds (a pause of up to
// 2 ms between them), so records land at every phase of the sweeps.
// Reports median and p99 of each, and the worst round beside the pollers.
func BenchmarkRingLatencyBesidePollers(b *testing.B) {
	n := max(b.N, 200)
	ring := newRing(b, 1<<20)
	p := ringProducer(b, ring, 16)
	src, err := pump.RingBuf[rec16](b.Context(), ring)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	take := func() { <-src.C() }
	alone := measureSpread(b, n, p, take)
	idleQueuePumps(b, 1000)
	beside := measureSpread(b, n, p, take)
	am, a99 := quantiles(alone)
	bm, b99 := quantiles(beside)
	b.ReportMetric(am, "alone-median-µs")
	b.ReportMetric(a99, "alone-p99-µs")
	b.ReportMetric(bm, "beside-median-µs")
	b.ReportMetric(b99, "beside-p99-µs")
	b.ReportMetric(float64(slices.Max(alone).Nanoseconds())/1e3, "alone-max-µs")
	b.ReportMetric(float64(slices.Max(beside).Nanoseconds())/1e3, "beside-max-µs")
	b.ReportMetric(overMs(alone), "alone-over-1ms")
	b.ReportMetric(overMs(beside), "beside-over-1ms")
}

// overMs counts the rounds that took over a millisecond.
func overMs(d []time.Duration) float64 {
	n := 0
	for _, x := range d {
		if x > time.Millisecond {
			n++
		}
	}
	return float64(n)
}

// measureSpread is measureLatency with a pause of up to 2 ms before each
// round (pacing, not synchronisation).
func measureSpread(b *testing.B, n int, p *producer.Producer, take func()) []time.Duration {
	return measurePaced(b, n, p, take, func(i int) {
		time.Sleep(time.Duration(i*7919%2000) * time.Microsecond)
	})
}

// idleQueuePumps starts n Queue pumps at default settings on n empty
// queues, the callers' maps closed once they run, and returns once their
// backoff has reached its maximum period; they are closed when b ends.
func idleQueuePumps(b *testing.B, n int) []*pump.Source[uint64] {
	srcs := make([]*pump.Source[uint64], 0, n)
	b.Cleanup(func() {
		for _, s := range srcs {
			s.Close()
		}
	})
	for range n {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Queue, ValueSize: 8, MaxEntries: 16})
		if err != nil {
			b.Fatal(err)
		}
		s, err := pump.Queue[uint64](b.Context(), m)
		m.Close()
		if err != nil {
			b.Fatal(err)
		}
		srcs = append(srcs, s)
	}
	time.Sleep(4 * pump.DefaultPollMax) // let the backoff reach its maximum
	return srcs
}
