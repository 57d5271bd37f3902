package pump_test

import (
	"context"
	"encoding/binary"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/bpfcall"
	"github.com/bpfchan/bpfchan/internal/producer"
	"github.com/bpfchan/bpfchan/internal/ringread"
	"github.com/bpfchan/bpfchan/pump"
)

// The user ring buffer benchmarks send values whose first 8 bytes are a
// sequence number (uint64, rec64, rec256: 8, 64 and 256 bytes), which the
// drainer checks. Its drain program runs with a large Repeat, so its
// Program.Run allocations (a handful per call) stay far below one per
// value.

const drainRepeat = 1024

func withSeq[T any](i uint64) (v T) {
	*(*uint64)(unsafe.Pointer(&v)) = i
	return v
}

// drainer runs d on its own goroutine until it has read want records in
// all; done yields when it had them, or the error that stopped it.
func drainer(ctx context.Context, d *producer.Drainer, want uint64) (done <-chan drainEnd) {
	c := make(chan drainEnd, 1)
	go func() {
		err := d.Until(ctx, want, drainRepeat)
		c <- drainEnd{time.Now(), err}
	}()
	return c
}

type drainEnd struct {
	at  time.Time
	err error
}

// sendUserRing sends n values, numbered from first, to a new UserRingBuf
// on m (WithBuffer(256)) and returns once it has committed them all.
func sendUserRing[T any](b *testing.B, m *ebpf.Map, first uint64, n int) {
	w, err := pump.UserRingBuf[T](b.Context(), m, pump.WithBuffer(256))
	if err != nil {
		b.Fatal(err)
	}
	for i := range uint64(n) {
		w.C() <- withSeq[T](first + i)
	}
	close(w.C())
	if err := w.Wait(); err != nil {
		b.Fatal(err)
	}
}

// bareWrite writes n records of size bytes, numbered from first, straight
// into the mapping: no channel, one commit per 256 records (the pump's
// longest run) and before spinning (runtime.Gosched) on a full ring.
func bareWrite(b *testing.B, w *ringread.Writer, size int, first uint64, n int) {
	rec := make([]byte, size)
	for i := range uint64(n) {
		binary.NativeEndian.PutUint64(rec, first+i)
		for {
			ok, err := w.Write(rec)
			if err != nil {
				b.Fatal(err)
			}
			if ok {
				break
			}
			w.Commit()
			runtime.Gosched()
		}
		if (i+1)%256 == 0 {
			w.Commit()
		}
	}
	w.Commit()
}

func openBare(b *testing.B, m *ebpf.Map) *ringread.Writer {
	w, err := ringread.OpenUser(m)
	if err != nil {
		b.Fatal(err)
	}
	return w
}

// checkDrained fails the benchmark unless d has read exactly want records,
// in order, with no failed drain.
func checkDrained(b *testing.B, d *producer.Drainer, want uint64) {
	s, err := d.Stats()
	if err != nil {
		b.Fatal(err)
	}
	if s.Records != want || s.Disorder != 0 || s.Failed != 0 {
		b.Fatalf("drained %+v, want %d records in order", s, want)
	}
}

// BenchmarkUserRingVsQueue: b.N values into the kernel through a
// UserRingBuf (a 1 MiB ring, a BPF drainer running concurrently) and
// through a QueueWriter (a 4096-entry queue, a goroutine popping
// concurrently), both WithBuffer(256), in the same run; each timed from
// the first send until Wait returned (every value committed or pushed).
// rate-x-queue is the user ring's rate over the queue writer's (target
// >= 5).
func BenchmarkUserRingVsQueue(b *testing.B) {
	b.Run("8B", func(b *testing.B) { benchVsQueue[uint64](b) })
	b.Run("64B", func(b *testing.B) { benchVsQueue[rec64](b) })
	b.Run("256B", func(b *testing.B) { benchVsQueue[rec256](b) })
}

func benchVsQueue[T any](b *testing.B) {
	size := int(unsafe.Sizeof(*new(T)))
	urb := newUserRing(b, 1<<20)
	d := newDrainer(b, urb)
	q := newQueue(b, ebpf.Queue, uint32(size), 4096)
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	b.ReportAllocs()
	b.ResetTimer()

	t0 := time.Now()
	drained := drainer(ctx, d, uint64(b.N))
	sendUserRing[T](b, urb, 0, b.N)
	ringTime := time.Since(t0)
	if end := <-drained; end.err != nil {
		b.Fatal(end.err)
	}
	checkDrained(b, d, uint64(b.N))

	popped := make(chan error, 1)
	go func() {
		buf := make([]byte, size)
		for got := 0; got < b.N; {
			switch e := bpfcall.Pop(q.FD(), buf); e {
			case 0:
				got++
			case unix.ENOENT, unix.EBUSY: // empty; the lock was taken
			default:
				popped <- e
				return
			}
		}
		popped <- nil
	}()
	t0 = time.Now()
	w, err := pump.QueueWriter[T](b.Context(), q, pump.WithBuffer(256))
	if err != nil {
		b.Fatal(err)
	}
	for i := range uint64(b.N) {
		w.C() <- withSeq[T](i)
	}
	close(w.C())
	if err := w.Wait(); err != nil {
		b.Fatal(err)
	}
	queueTime := time.Since(t0)
	if err := <-popped; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(ringTime.Nanoseconds())/float64(b.N), "urb-ns/value")
	b.ReportMetric(float64(queueTime.Nanoseconds())/float64(b.N), "queue-ns/value")
	b.ReportMetric(float64(queueTime)/float64(ringTime), "rate-x-queue")
}

// BenchmarkUserRingDrainBound: a BPF program draining concurrently is the
// bottleneck: it spins drainWork iterations per record (about 0.4 µs
// here), standing in for a program that processes each command.
// b.N values through a UserRingBuf, and b.N records written by a bare loop,
// each into its own 64 KiB ring under its own drainer, in the same run; each
// timed from the first value until the drainer has read them all.
// rate-x-bare is the pump's rate over the bare loop's (target >= 0.8);
// drain-ns/rec is what the drainer alone takes per record of a full ring.
func BenchmarkUserRingDrainBound(b *testing.B) {
	b.Run("8B", func(b *testing.B) { benchDrainBound[uint64](b) })
	b.Run("64B", func(b *testing.B) { benchDrainBound[rec64](b) })
	b.Run("256B", func(b *testing.B) { benchDrainBound[rec256](b) })
}

const drainWork = 1024

// userRingPath is one way into a ring: a bare Writer or a UserRingBuf, on
// a ring of its own with its own drainer, both open for the whole
// benchmark (a fresh mapping would add its page faults to the figures).
type userRingPath[T any] struct {
	size  int
	bare  *ringread.Writer
	d     *producer.Drainer
	w     *pump.Sink[T]
	sent  uint64 // values written or sent so far
	drain time.Duration
}

func newBarePath[T any](b *testing.B, ring uint32, work int) *userRingPath[T] {
	m := newUserRing(b, ring)
	p := &userRingPath[T]{size: int(unsafe.Sizeof(*new(T))), bare: openBare(b, m), d: newWorker(b, m, work)}
	b.Cleanup(func() { p.bare.Close() })
	p.warm(b, ring)
	return p
}

func newPumpPath[T any](b *testing.B, ring uint32, work int) *userRingPath[T] {
	m := newUserRing(b, ring)
	p := &userRingPath[T]{size: int(unsafe.Sizeof(*new(T))), d: newWorker(b, m, work)}
	w, err := pump.UserRingBuf[T](b.Context(), m, pump.WithBuffer(256))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		close(w.C())
		w.Wait()
	})
	p.w = w
	p.warm(b, ring)
	return p
}

func newWorker(b *testing.B, m *ebpf.Map, work int) *producer.Drainer {
	if work == 0 {
		return newDrainer(b, m)
	}
	d, err := producer.NewUserRingWorker(m, work)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	return d
}

// warm writes and drains a whole ring, so every page of the mapping is
// present before the clock runs.
func (p *userRingPath[T]) warm(b *testing.B, ring uint32) {
	p.write(b, int(ring)/ringread.RecordSize(p.size))
	p.drainAll(b)
}

// write writes or sends n more values; for the pump it returns once they
// are committed.
func (p *userRingPath[T]) write(b *testing.B, n int) {
	if p.bare != nil {
		bareWrite(b, p.bare, p.size, p.sent, n)
		p.sent += uint64(n)
		return
	}
	for range n {
		p.w.C() <- withSeq[T](p.sent)
		p.sent++
	}
	for p.w.Stats().Delivered < p.sent {
		runtime.Gosched()
	}
}

// drainAll runs the drainer until it has read every value written, and
// adds the time it took to p.drain.
func (p *userRingPath[T]) drainAll(b *testing.B) {
	t0 := time.Now()
	if err := p.d.Until(b.Context(), p.sent, 1); err != nil {
		b.Fatal(err)
	}
	p.drain += time.Since(t0)
}

// concurrent writes n values while the drainer runs on its own goroutine,
// and returns the time until the drainer has read them all.
func (p *userRingPath[T]) concurrent(b *testing.B, n int) time.Duration {
	t0 := time.Now()
	drained := drainer(b.Context(), p.d, p.sent+uint64(n))
	p.write(b, n)
	end := <-drained
	if end.err != nil {
		b.Fatal(end.err)
	}
	return end.at.Sub(t0)
}

func benchDrainBound[T any](b *testing.B) {
	const ring = 1 << 16
	bare := newBarePath[T](b, ring, drainWork)
	urb := newPumpPath[T](b, ring, drainWork)
	b.ReportAllocs()
	b.ResetTimer()
	// The drainer alone, on full rings.
	bare.drain = 0
	for done, chunk := 0, ring/ringread.RecordSize(bare.size); done < b.N; done += chunk {
		bare.write(b, min(chunk, b.N-done))
		bare.drainAll(b)
	}
	bareTime := bare.concurrent(b, b.N)
	urbTime := urb.concurrent(b, b.N)
	b.StopTimer()
	checkDrained(b, bare.d, bare.sent)
	checkDrained(b, urb.d, urb.sent)
	b.ReportMetric(float64(bare.drain.Nanoseconds())/float64(b.N), "drain-ns/rec")
	b.ReportMetric(float64(bareTime.Nanoseconds())/float64(b.N), "bare-ns/value")
	b.ReportMetric(float64(urbTime.Nanoseconds())/float64(b.N), "urb-ns/value")
	b.ReportMetric(float64(bareTime)/float64(urbTime), "rate-x-bare")
}

// BenchmarkUserRingSenderBound: the sender is the bottleneck: each ring
// (4 MiB) holds a whole chunk of values and is drained between chunks.
// urb-ns/value is a UserRingBuf's cost per value (the channel send, the
// pump's write, its commits), bare-ns/value a bare loop's writing the same
// records into a ring of its own, in the same run.
func BenchmarkUserRingSenderBound(b *testing.B) {
	b.Run("8B", func(b *testing.B) { benchSenderBound[uint64](b) })
	b.Run("64B", func(b *testing.B) { benchSenderBound[rec64](b) })
	b.Run("256B", func(b *testing.B) { benchSenderBound[rec256](b) })
}

func benchSenderBound[T any](b *testing.B) {
	const ring = 1 << 22
	bare := newBarePath[T](b, ring, 0)
	urb := newPumpPath[T](b, ring, 0)
	chunk := ring / ringread.RecordSize(bare.size)
	b.ReportAllocs()
	b.ResetTimer()
	var bareTime, urbTime time.Duration
	for done := 0; done < b.N; done += chunk {
		n := min(chunk, b.N-done)
		t0 := time.Now()
		bare.write(b, n)
		bareTime += time.Since(t0)
		t0 = time.Now()
		urb.write(b, n)
		urbTime += time.Since(t0)
		b.StopTimer()
		bare.drainAll(b)
		urb.drainAll(b)
		b.StartTimer()
	}
	b.StopTimer()
	checkDrained(b, bare.d, bare.sent)
	checkDrained(b, urb.d, urb.sent)
	b.ReportMetric(float64(bareTime.Nanoseconds())/float64(b.N), "bare-ns/value")
	b.ReportMetric(float64(urbTime.Nanoseconds())/float64(b.N), "urb-ns/value")
	b.ReportMetric(float64(bareTime)/float64(urbTime), "rate-x-bare")
}
