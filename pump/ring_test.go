package pump_test

import (
	"context"
	"errors"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bpfchan/bpfchan/chans"
	"github.com/bpfchan/bpfchan/internal/producer"
	"github.com/bpfchan/bpfchan/internal/testenv"
	"github.com/bpfchan/bpfchan/pump"
)

// TestRingExactDelivery sends a million sequenced records through a ring
// buffer while a pump delivers them: none lost, none duplicated, in order.
// The producer is paced in chunks so the ring never overflows.
func TestRingExactDelivery(t *testing.T) {
	const (
		total = 1_000_000
		chunk = 50_000 // 50,000 records of 24 ring bytes: 1.2 MB
	)
	rb := newRing(t, 4<<20)
	p := ringProducer(t, rb, 16)
	ctx, cancel := context.WithCancel(t.Context())
	src, err := pump.RingBufBatches[rec16](ctx, rb, pump.WithBuffer(4))
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, cancel, src)

	consumed := make(chan int, total/chunk) // one token per chunk consumed
	prodErr := make(chan error, 1)
	go func() {
		for i := 0; i < total/chunk; i++ {
			if i >= 2 {
				<-consumed // at most two chunks in the ring
			}
			if err := p.Run(chunk); err != nil {
				prodErr <- err
				return
			}
		}
		prodErr <- nil
	}()
	want := uint64(0)
	for want < total {
		batch, ok := recv(t, src.C())
		if !ok {
			t.Fatalf("C() closed after %d records: %v", want, src.Wait())
		}
		for _, r := range batch {
			if r.Seq != want {
				t.Fatalf("got seq %d, want %d", r.Seq, want)
			}
			want++
			if want%chunk == 0 {
				consumed <- int(want)
			}
		}
		src.Recycle(batch)
	}
	if err := <-prodErr; err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, ok := <-src.C(); ok {
		t.Fatal("a record after the last one")
	}
	attempted, lost, err := p.Counts()
	if err != nil || attempted != total || lost != 0 {
		t.Fatalf("producer: attempted %d lost %d (%v), want %d and 0", attempted, lost, err, total)
	}
	st := src.Stats()
	if st.Received != total || st.Delivered != total || st.Dropped != 0 || st.DecodeErrors != 0 {
		t.Fatalf("stats %+v, want %d received and delivered", st, total)
	}
}

// TestRingSingleValues delivers records one by one, in order, including
// the zero value (sequence 0 with zero padding).
func TestRingSingleValues(t *testing.T) {
	rb := newRing(t, 1<<16)
	p := ringProducer(t, rb, 16)
	ctx, cancel := context.WithCancel(t.Context())
	src, err := pump.RingBuf[rec16](ctx, rb)
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, cancel, src)
	run(t, p, 1000)
	for want := uint64(0); want < 1000; want++ {
		v, ok := recv(t, src.C())
		if !ok {
			t.Fatalf("closed at %d: %v", want, src.Wait())
		}
		if want == 0 && v != (rec16{}) {
			t.Fatalf("first record %+v, want the zero value", v)
		}
		if v.Seq != want {
			t.Fatalf("got seq %d, want %d", v.Seq, want)
		}
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if st := src.Stats(); st.Received != 1000 || st.Delivered != 1000 {
		t.Fatalf("stats %+v, want 1000 received and delivered", st)
	}
}

// TestRingWrongSize counts records of the wrong size as decode errors and
// keeps delivering the right ones.
func TestRingWrongSize(t *testing.T) {
	rb := newRing(t, 1<<16)
	good := ringProducer(t, rb, 16)
	bad := ringProducer(t, rb, 24)
	ctx, cancel := context.WithCancel(t.Context())
	src, err := pump.RingBuf[rec16](ctx, rb, pump.WithBuffer(100))
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, cancel, src)
	run(t, bad, 10)
	run(t, good, 5)
	run(t, bad, 3)
	var got []uint64
	for i := 0; i < 5; i++ {
		v, _ := recv(t, src.C())
		got = append(got, v.Seq)
	}
	if err := src.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if want := []uint64{0, 1, 2, 3, 4}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	st := src.Stats()
	if st.Received != 18 || st.Delivered != 5 || st.DecodeErrors != 13 {
		t.Fatalf("stats %+v, want 18 received, 5 delivered, 13 decode errors", st)
	}
}

// TestRingFourConsumers: consumers ranging over one C() get each record
// exactly once between them.
func TestRingFourConsumers(t *testing.T) {
	const n = 20_000
	rb := newRing(t, 1<<20)
	p := ringProducer(t, rb, 16)
	ctx, cancel := context.WithCancel(t.Context())
	src, err := pump.RingBuf[rec16](ctx, rb)
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, cancel, src)
	var wg sync.WaitGroup
	got := make([][]uint64, 4)
	for i := range got {
		wg.Go(func() {
			for v := range src.C() {
				got[i] = append(got[i], v.Seq)
			}
		})
	}
	run(t, p, n)
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	all := slices.Concat(got...)
	slices.Sort(all)
	if len(all) != n {
		t.Fatalf("got %d records, want %d", len(all), n)
	}
	for i, s := range all {
		if s != uint64(i) {
			t.Fatalf("record %d: got seq %d (duplicate or gap)", i, s)
		}
	}
}

// TestRingNoWakeup: records submitted with BPF_RB_NO_WAKEUP raise no event;
// the periodic drain delivers them.
func TestRingNoWakeup(t *testing.T) {
	rb := newRing(t, 1<<16)
	first := ringProducer(t, rb, 16)
	p := ringProducer(t, rb, 16, producer.NoWakeup())
	ctx, cancel := context.WithCancel(t.Context())
	src, err := pump.RingBuf[rec16](ctx, rb, pump.WithDrainInterval(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, cancel, src)
	// A woken round trip first, then wait until the pump is parked in the
	// netpoller, so only the periodic drain can find the silent records.
	run(t, first, 1)
	recv(t, src.C())
	waitParked(t)
	run(t, p, 3)
	for want := uint64(0); want < 3; want++ {
		if v, _ := recv(t, src.C()); v.Seq != want {
			t.Fatalf("got seq %d, want %d", v.Seq, want)
		}
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRingDecoderPanic stops the pump with an error carrying the panic value.
func TestRingDecoderPanic(t *testing.T) {
	rb := newRing(t, 1<<16)
	p := ringProducer(t, rb, 16)
	src, err := pump.RingBuf[rec16](t.Context(), rb, pump.WithDecoder(func([]byte) (rec16, error) {
		panic("boom")
	}))
	if err != nil {
		t.Fatal(err)
	}
	run(t, p, 1)
	if _, ok := recv(t, src.C()); ok {
		t.Fatal("got a value from a panicking decoder")
	}
	err = src.Wait()
	if !errors.Is(err, pump.ErrPanic) || !strings.Contains(err.Error(), "boom") || !strings.Contains(err.Error(), "test_ring") {
		t.Fatalf("Wait: %v, want ErrPanic with the value and the map name", err)
	}
	if st := src.Stats(); st.Received != 1 || st.DecodeErrors != 1 {
		t.Fatalf("stats %+v, want 1 received, 1 decode error", st)
	}
}

// TestRingDecoder decodes with a user decoder.
func TestRingDecoder(t *testing.T) {
	rb := newRing(t, 1<<16)
	p := ringProducer(t, rb, 13)
	src, err := pump.RingBuf[int](t.Context(), rb, pump.WithDecoder(func(b []byte) (int, error) {
		if len(b) != 13 {
			return 0, errors.New("short")
		}
		return int(b[0]), nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	run(t, p, 3)
	for want := range 3 {
		if v, _ := recv(t, src.C()); v != want {
			t.Fatalf("got %d, want %d", v, want)
		}
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRingStop: Close and ctx cancel on an idle pump return promptly; the
// goroutine and descriptors are gone (TestMain checks).
func TestRingStop(t *testing.T) {
	rb := newRing(t, 1<<16)
	src, err := pump.RingBuf[rec16](t.Context(), rb)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, ok := <-src.C(); ok {
		t.Fatal("C() open after Close")
	}
	cause := errors.New("test cause")
	ctx, cancel := context.WithCancelCause(t.Context())
	src, err = pump.RingBuf[rec16](ctx, rb)
	if err != nil {
		t.Fatal(err)
	}
	cancel(cause)
	if err := src.Wait(); !errors.Is(err, cause) {
		t.Fatalf("Wait after cancel: %v, want %v", err, cause)
	}
	if err := src.Close(); !errors.Is(err, cause) {
		t.Fatalf("Close after cancel: %v, want %v", err, cause)
	}
}

// TestRingOverflow applies the drop policies to a consumer that does not
// receive, and accounts for every record.
func TestRingOverflow(t *testing.T) {
	for _, tc := range []struct {
		policy chans.Policy
		want   []uint64
	}{
		{chans.DropNewest, []uint64{0, 1}},
		{chans.DropOldest, []uint64{8, 9}},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			rb := newRing(t, 1<<16)
			p := ringProducer(t, rb, 16)
			src, err := pump.RingBuf[rec16](t.Context(), rb, pump.WithBuffer(2), pump.WithOverflow(tc.policy))
			if err != nil {
				t.Fatal(err)
			}
			run(t, p, 10)
			if err := src.Close(); err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for v := range src.C() {
				got = append(got, v.Seq)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if st := src.Stats(); st.Received != 10 || st.Delivered != 2 || st.Dropped != 8 {
				t.Fatalf("stats %+v, want 10 received, 2 delivered, 8 dropped", st)
			}
		})
	}
}

// TestIdleRingPumpsHoldNoThreads: 100 idle ring pumps park in the
// netpoller and add fewer than 10 OS threads.
func TestIdleRingPumpsHoldNoThreads(t *testing.T) {
	before := threads(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var srcs []*pump.Source[rec16]
	for range 100 {
		rb := newRing(t, 4096)
		p := ringProducer(t, rb, 16)
		src, err := pump.RingBuf[rec16](ctx, rb)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, src)
		run(t, p, 1)
		recv(t, src.C()) // the pump has run and gone back to waiting
	}
	after := threads(t)
	for _, s := range srcs {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if after-before >= 10 {
		t.Fatalf("100 idle pumps added %d OS threads (%d -> %d), want < 10", after-before, before, after)
	}
}

// threads counts this process's OS threads.
func threads(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// waitParked returns once a goroutine is parked in netpoll.(*Reg).Park (an
// idle ring pump), or fails after failAfter.
func waitParked(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(failAfter)
	for {
		st := string(buf[:runtime.Stack(buf, true)])
		for _, g := range strings.Split(st, "\n\n") {
			if strings.Contains(g, "[select") && strings.Contains(g, "netpoll.(*Reg).Park") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ring pump parked after %v", failAfter)
		}
		runtime.Gosched()
	}
}

type rec248 struct {
	Seq uint64
	Pad [240]byte
}

// TestRingSlowConsumerKeepsSpace: a pump whose receiver is slow holds at
// most the record it is trying to deliver; the space of the records
// before it goes back to the producer at once. A one-page ring holds 15
// records of 248 bytes; it is filled, then each value received makes room
// for one more record, 30 times over, and the producer must never find
// the ring full.
func TestRingSlowConsumerKeepsSpace(t *testing.T) {
	rb := newRing(t, 4096)
	p := ringProducer(t, rb, 248)
	ctx, cancel := context.WithCancel(t.Context())
	src, err := pump.RingBuf[rec248](ctx, rb) // unbuffered: one value in hand
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, cancel, src)
	run(t, p, 15)
	for i := range uint64(31) {
		v, _ := recv(t, src.C())
		if v.Seq != i {
			t.Fatalf("got seq %d, want %d", v.Seq, i)
		}
		// Value i was read, so the records before it are handed back:
		// with one refill per value after the first, one slot is free.
		if i > 0 {
			run(t, p, 1)
		}
	}
	if _, lost, _ := p.Counts(); lost != 0 {
		t.Fatalf("the producer lost %d records: the pump kept the space of records it had read", lost)
	}
	// The ring is full again and nobody receives: stop at once.
	cancel()
	if err := src.Wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait after cancel = %v, want context.Canceled", err)
	}
}

// TestRingDecoderOwnsItsBytes: the ring is mapped read-only and reused, so
// a decoder gets a copy: writing to it does not crash the process, and
// bytes it kept stay readable after the pump stopped (they are only
// overwritten by later records, as WithDecoder says).
func TestRingDecoderOwnsItsBytes(t *testing.T) {
	rb := newRing(t, 4096)
	p := ringProducer(t, rb, 16)
	var kept []byte
	src, err := pump.RingBuf[uint64](t.Context(), rb, pump.WithDecoder(func(b []byte) (uint64, error) {
		b[0] ^= 0xff // an in-place transform
		kept = b
		return uint64(b[0]), nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	run(t, p, 2)
	for i := range uint64(2) {
		if v, _ := recv(t, src.C()); v != i^0xff {
			t.Fatalf("got %#x, want %#x", v, i^0xff)
		}
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if kept[0] != 1^0xff {
		t.Fatalf("kept bytes read %#x after Close, want %#x", kept[0], 1^0xff)
	}
}

// TestRingWakeups: with the periodic drain an hour away, every record must
// come through a wake-up, in bursts of one to three separated by the
// consumer catching up, so the pump parks between most of them.
func TestRingWakeups(t *testing.T) {
	rb := newRing(t, 4096)
	p := ringProducer(t, rb, 16)
	ctx, cancel := context.WithCancel(t.Context())
	src, err := pump.RingBuf[rec16](ctx, rb, pump.WithDrainInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, cancel, src)
	want := uint64(0)
	for round := range 3000 {
		k := 1 + round%3
		run(t, p, k)
		for range k {
			if v, _ := recv(t, src.C()); v.Seq != want {
				t.Fatalf("got seq %d, want %d", v.Seq, want)
			}
			want++
		}
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
}

// A record that stays reserved while the pump runs neither stops it nor
// keeps it busy: the pump parks (the drain interval is an hour, so only a
// wake-up brings it back; TestRingReservedRecordParksPump counts its
// waits), the commit wakes it, and the reserved record and the one
// committed behind it arrive in order.
func TestRingReservedRecordWakes(t *testing.T) {
	rb := newRing(t, 4096)
	p := ringProducer(t, rb, 8)
	testenv.RequireKernelFaults(t)
	g, err := producer.NewRingGate(rb, 0xfeed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	ctx, cancel := context.WithCancel(t.Context())
	src, err := pump.RingBuf[uint64](ctx, rb, pump.WithDrainInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, cancel, src)
	for round := range 3 {
		if err := g.Start(); err != nil {
			t.Fatal(err)
		}
		if err := g.AwaitWaiting(); err != nil {
			t.Fatal(err)
		}
		run(t, p, 1)
		select {
		case v := <-src.C():
			t.Fatalf("round %d: received %#x while the first record is reserved", round, v)
		default:
		}
		if err := g.Open(); err != nil {
			t.Fatal(err)
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		for _, want := range []uint64{0xfeed, uint64(round)} {
			if v, _ := recv(t, src.C()); v != want {
				t.Fatalf("round %d: received %#x, want %#x", round, v, want)
			}
		}
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
}
