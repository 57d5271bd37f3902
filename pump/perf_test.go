package pump_test

import (
	"context"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/producer"
	"github.com/bpfchan/bpfchan/internal/testenv"
	"github.com/bpfchan/bpfchan/pump"
)

func newPerfArray(tb testing.TB) *ebpf.Map {
	return newMap(tb, &ebpf.MapSpec{Name: "test_perf", Type: ebpf.PerfEventArray})
}

func perfProducer(tb testing.TB, m *ebpf.Map, size int) *producer.Producer {
	tb.Helper()
	p, err := producer.NewPerf(m, size)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

// TestPerfDelivery: samples arrive in order (one producer runs on one CPU
// per Run), with the kernel's padding trimmed: 12-byte samples are padded
// to 16 but still decode into a 12-byte type.
func TestPerfDelivery(t *testing.T) {
	type rec12 struct {
		Seq uint64
		Pad uint32
	}
	m := newPerfArray(t)
	p := perfProducer(t, m, 12)
	ctx, cancel := context.WithCancel(t.Context())
	src, err := pump.Perf[rec12](ctx, m, pump.WithBuffer(100))
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, cancel, src)
	testenv.OnOneCPU(t, func() { run(t, p, 100) }) // one per-CPU buffer: in order
	for want := uint64(0); want < 100; want++ {
		v, ok := recv(t, src.C())
		if !ok {
			t.Fatalf("closed: %v", src.Wait())
		}
		if v.Seq != want {
			t.Fatalf("got seq %d, want %d", v.Seq, want)
		}
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if st := src.Stats(); st.Received != 100 || st.Delivered != 100 || st.LostSamples != 0 {
		t.Fatalf("stats %+v, want 100 received and delivered, none lost", st)
	}
}

// TestPerfLostSamples: a per-CPU buffer of one page cannot hold a burst of
// samples; the kernel's lost-sample reports are counted. The kernel writes
// its "lost" record only ahead of the next sample that fits into the SAME
// per-CPU buffer, so every run is pinned to one CPU.
func TestPerfLostSamples(t *testing.T) {
	m := newPerfArray(t)
	p := perfProducer(t, m, 256)
	ctx, cancel := context.WithCancel(t.Context())
	src, err := pump.Perf[rec256](ctx, m, pump.WithPerfBuffer(1)) // unbuffered C(): at most one sample in hand
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, cancel, src)
	var attempted, lost uint64
	testenv.OnOneCPU(t, func() {
		run(t, p, 5000) // nobody receives: one page fills, the kernel loses the rest
		attempted, lost, _ = p.Counts()
		for range attempted - lost {
			recv(t, src.C()) // the pump has read every written sample: the buffer is empty
		}
		run(t, p, 1) // fits, behind the kernel's loss report
	})
	recv(t, src.C())
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	st := src.Stats()
	if lost == 0 || st.LostSamples != lost || st.Received != attempted-lost+1 || st.Delivered != st.Received {
		t.Fatalf("stats %+v; producer attempted %d, lost %d: want LostSamples %d, Received %d", st, attempted, lost, lost, attempted-lost+1)
	}
}

// TestPerfStop: Close and cancel interrupt an idle perf pump.
func TestPerfStop(t *testing.T) {
	m := newPerfArray(t)
	src, err := pump.Perf[rec16](t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	src, err = pump.Perf[rec16](ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := src.Wait(); err != context.Canceled {
		t.Fatalf("Wait: %v, want context.Canceled (the caller's cancel)", err)
	}
}

// TestPerfWakeupEvents: with a wakeup threshold above what is produced the
// kernel never wakes the reader; the periodic drain delivers the samples.
func TestPerfWakeupEvents(t *testing.T) {
	m := newPerfArray(t)
	p := perfProducer(t, m, 16)
	ctx, cancel := context.WithCancel(t.Context())
	src, err := pump.Perf[rec16](ctx, m, pump.WithWakeupEvents(1000), pump.WithDrainInterval(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, cancel, src)
	run(t, p, 5)
	for want := uint64(0); want < 5; want++ {
		if v, _ := recv(t, src.C()); v.Seq != want {
			t.Fatalf("got seq %d, want %d", v.Seq, want)
		}
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPerfCloseCountsLoss: the kernel reports a loss only ahead of a later
// sample that fits; after an overflowing burst and one trailing sample, a
// graceful Close (with the trailing sample not yet received) reads the
// buffers once more, so Received + LostSamples is what was produced.
func TestPerfCloseCountsLoss(t *testing.T) {
	m := newPerfArray(t)
	p := perfProducer(t, m, 256)
	ctx, cancel := context.WithCancel(t.Context())
	src, err := pump.Perf[rec256](ctx, m, pump.WithPerfBuffer(1))
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, cancel, src)
	var attempted, lost uint64
	testenv.OnOneCPU(t, func() {
		run(t, p, 5000)
		attempted, lost, _ = p.Counts()
		for range attempted - lost {
			recv(t, src.C())
		}
		run(t, p, 1)
	})
	closed := make(chan error, 1)
	go func() { closed <- src.Close() }()
	for range src.C() {
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	st := src.Stats()
	if st.Received+st.LostSamples != attempted+1 || lost == 0 {
		t.Fatalf("stats %+v: received + lost = %d, want the %d produced (%d lost by the kernel)", st, st.Received+st.LostSamples, attempted+1, lost)
	}
}

// TestPerfSamplesCPU: PerfSamples tells each sample's CPU.
func TestPerfSamplesCPU(t *testing.T) {
	m := newPerfArray(t)
	p := perfProducer(t, m, 16)
	ctx, cancel := context.WithCancel(t.Context())
	src, err := pump.PerfSamples[rec16](ctx, m, pump.WithBuffer(8))
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, cancel, src)
	var cpu int
	testenv.OnOneCPU(t, func() {
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &set); err != nil {
			t.Fatal(err)
		}
		for cpu = 0; !set.IsSet(cpu); cpu++ {
		}
		run(t, p, 3)
	})
	for want := range uint64(3) {
		s, _ := recv(t, src.C())
		if s.Value.Seq != want || s.CPU != cpu {
			t.Fatalf("got %+v, want seq %d from CPU %d", s, want, cpu)
		}
	}
}
