package pump_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/chans"
	"github.com/bpfchan/bpfchan/internal/testenv"
	"github.com/bpfchan/bpfchan/internal/wake"
	"github.com/bpfchan/bpfchan/pump"
)

// drainSeq receives until C() closes and checks the sequence numbers are
// from, from+1, ...; it returns how many came.
func drainSeq[T any](t *testing.T, c <-chan T, from uint64, seqOf func(T) uint64) uint64 {
	t.Helper()
	want := from
	for {
		v, ok := recv(t, c)
		if !ok {
			return want - from
		}
		if got := seqOf(v); got != want {
			t.Fatalf("got seq %d, want %d", got, want)
		}
		want++
	}
}

// TestCloseWhileSending: Close while the pump is blocked handing a value to
// an unbuffered C() delivers that value and everything the map holds, then
// closes C().
func TestCloseWhileSending(t *testing.T) {
	const n = 10
	rb := newRing(t, 4096)
	p := ringProducer(t, rb, 16)
	ctx, cancel := context.WithCancel(t.Context())
	src, err := pump.RingBuf[rec16](ctx, rb)
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, cancel, src)
	run(t, p, n)
	if v, _ := recv(t, src.C()); v.Seq != 0 {
		t.Fatalf("got seq %d, want 0", v.Seq)
	}
	closed := make(chan error, 1)
	go func() { closed <- src.Close() }()
	if got := drainSeq(t, src.C(), 1, func(r rec16) uint64 { return r.Seq }); got != n-1 {
		t.Fatalf("Close delivered %d records, want %d", got, n-1)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if st := src.Stats(); st.Received != n || st.Delivered != n {
		t.Fatalf("stats %+v, want %d received and delivered", st, n)
	}
}

// TestPerfCloseDelivers: a graceful Close of a perf pump delivers the
// samples its buffers hold.
func TestPerfCloseDelivers(t *testing.T) {
	const n = 20
	m := newPerfArray(t)
	p := perfProducer(t, m, 16)
	ctx, cancel := context.WithCancel(t.Context())
	src, err := pump.Perf[rec16](ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, cancel, src)
	testenv.OnOneCPU(t, func() { run(t, p, n) }) // one buffer: in order
	closed := make(chan error, 1)
	go func() { closed <- src.Close() }()
	if got := drainSeq(t, src.C(), 0, func(r rec16) uint64 { return r.Seq }); got != n {
		t.Fatalf("Close delivered %d samples, want %d", got, n)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}

// TestWriterWakesPoller: a push through this package's writer wakes a queue
// poller sleeping out a one-hour backoff.
func TestWriterWakesPoller(t *testing.T) {
	for _, typ := range []ebpf.MapType{ebpf.Queue, ebpf.Stack} {
		t.Run(typ.String(), func(t *testing.T) {
			m := newQueue(t, typ, 8, 4)
			ctx, cancel := context.WithCancel(t.Context())
			src, err := pump.Queue[uint64](ctx, m, pump.WithPoll(time.Hour, time.Hour))
			if typ == ebpf.Stack {
				src, err = pump.Stack[uint64](ctx, m, pump.WithPoll(time.Hour, time.Hour))
			}
			if err != nil {
				t.Fatal(err)
			}
			closeOnCleanup(t, cancel, src)
			w, err := pump.QueueWriter[uint64](ctx, m)
			if typ == ebpf.Stack {
				w, err = pump.StackWriter[uint64](ctx, m)
			}
			if err != nil {
				t.Fatal(err)
			}
			closeOnCleanup(t, cancel, w)
			for i := range uint64(3) {
				w.C() <- i
				if v, _ := recv(t, src.C()); v != i {
					t.Fatalf("got %d, want %d", v, i)
				}
			}
		})
	}
}

// TestWakeRegistryEmpties: every pump releases its wake-up signals when it
// stops, including a constructor that failed half way.
func TestWakeRegistryEmpties(t *testing.T) {
	before := wake.Len()
	m := newQueue(t, ebpf.Queue, 8, 16)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	a, err := pump.Queue[uint64](ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	b, err := pump.QueueWriter[uint64](ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	d, err := pump.QueueChannel[uint64](ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pump.QueueChannel[uint32](ctx, m); err == nil {
		t.Fatal("a 4-byte type on an 8-byte queue was accepted")
	}
	if _, err := pump.QueueChannel[uint64](ctx, m, pump.WithEncoder(func(uint32) ([]byte, error) { return nil, nil })); err == nil {
		t.Fatal("an encoder of the wrong type was accepted")
	}
	if wake.Len() == before {
		t.Fatal("running pumps registered no signal")
	}
	for _, s := range []stopper{a, b, d} {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if n := wake.Len(); n != before {
		t.Fatalf("the registry holds %d signals after every pump stopped, want %d", n, before)
	}
}

// TestBatchesOverflow: RingBufBatches under a drop policy, with nobody
// receiving, accounts for every record.
func TestBatchesOverflow(t *testing.T) {
	for _, policy := range []chans.Policy{chans.DropNewest, chans.DropOldest} {
		t.Run(policy.String(), func(t *testing.T) {
			rb := newRing(t, 1<<16)
			p := ringProducer(t, rb, 16)
			src, err := pump.RingBufBatches[rec16](t.Context(), rb,
				pump.WithBuffer(2), pump.WithOverflow(policy), pump.WithBatch(10, time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			run(t, p, 100)
			if err := src.Close(); err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for b := range src.C() {
				for _, r := range b {
					got = append(got, r.Seq)
				}
			}
			st := src.Stats()
			if st.Received != 100 || st.Delivered != uint64(len(got)) || st.Delivered+st.Dropped != 100 || len(got) == 0 {
				t.Fatalf("stats %+v, received %d records", st, len(got))
			}
			// Batches are whole: what survives is whole batches of 10, the
			// first ones (DropNewest) or the last ones (DropOldest).
			first := got[0]
			if policy == chans.DropOldest {
				first = 100 - uint64(len(got))
			} else if first != 0 {
				t.Fatalf("DropNewest kept %v, want it to start at 0", got)
			}
			for i, v := range got {
				if v != first+uint64(i) {
					t.Fatalf("%v kept %v, want a run from %d", policy, got, first)
				}
			}
		})
	}
}

// TestStatsFinalWhenCCloses: a consumer that ranges over C() and then
// reads Stats sees the identity hold, without calling Wait first, however
// the pump stopped (rule 5).
func TestStatsFinalWhenCCloses(t *testing.T) {
	rb := newRing(t, 1<<16)
	p := ringProducer(t, rb, 16)
	for i := range 200 {
		ctx, cancel := context.WithCancel(t.Context())
		src, err := pump.RingBuf[rec16](ctx, rb, pump.WithBuffer(4), pump.WithOverflow(chans.DropOldest))
		if err != nil {
			t.Fatal(err)
		}
		run(t, p, 20)
		if i%2 == 0 {
			go src.Close()
		} else {
			go cancel()
		}
		got := uint64(0)
		for range src.C() {
			got++
		}
		st := src.Stats()
		if st.Received != st.Delivered+st.Dropped+st.DecodeErrors || st.Delivered != got {
			t.Fatalf("run %d: stats %+v when C() closed, %d received by the consumer", i, st, got)
		}
		cancel()
		src.Wait()
	}
}

// TestAbortTakesBack: after a cancel, the values the pump had put in C()'s
// buffer that no receiver took are taken back and counted dropped, so
// Delivered is exactly what receivers got (rule 4).
func TestAbortTakesBack(t *testing.T) {
	rb := newRing(t, 4096)
	p := ringProducer(t, rb, 16)
	for _, batches := range []bool{false, true} {
		ctx, cancel := context.WithCancel(t.Context())
		var (
			c     func() int
			wait  func() error
			stats func() pump.Stats
		)
		if batches {
			src, err := pump.RingBufBatches[rec16](ctx, rb, pump.WithBuffer(4), pump.WithBatch(1, time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			c, wait, stats = func() int { return len(src.C()) }, src.Wait, src.Stats
		} else {
			src, err := pump.RingBuf[rec16](ctx, rb, pump.WithBuffer(4))
			if err != nil {
				t.Fatal(err)
			}
			c, wait, stats = func() int { return len(src.C()) }, src.Wait, src.Stats
		}
		run(t, p, 5)
		deadline := time.Now().Add(failAfter)
		for c() < 4 { // the buffer is full, one value in hand
			if time.Now().After(deadline) {
				t.Fatal("C()'s buffer did not fill")
			}
			runtime.Gosched()
		}
		cancel()
		if err := wait(); err != context.Canceled {
			t.Fatalf("Wait: %v, want context.Canceled", err)
		}
		if n := c(); n != 0 {
			t.Fatalf("batches=%v: %d values left in C() after the abort", batches, n)
		}
		if st := stats(); st.Delivered != 0 || st.Dropped != 5 || st.Received != 5 {
			t.Fatalf("batches=%v: stats %+v, want 5 received and dropped, none delivered", batches, st)
		}
	}
}
