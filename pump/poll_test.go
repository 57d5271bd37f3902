package pump_test

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/maps"
	"github.com/bpfchan/bpfchan/pump"
)

// pushRaw pushes v into m with a plain map update, as another process would.
func pushRaw(t *testing.T, m *ebpf.Map, v uint64) {
	t.Helper()
	if err := m.Update(nil, unsafe.Pointer(&v), ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
}

// popAll pops m until it is empty.
func popAll(t *testing.T, m *ebpf.Map) []uint64 {
	t.Helper()
	var got []uint64
	for {
		var v uint64
		err := m.LookupAndDelete(nil, unsafe.Pointer(&v))
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
}

func seq(from, to int) []uint64 {
	var s []uint64
	for i := from; i != to; {
		s = append(s, uint64(i))
		if from < to {
			i++
		} else {
			i--
		}
	}
	return s
}

// TestPollOrder: values pushed by a BPF program come out of a Queue pump
// FIFO and out of a Stack pump LIFO, the zero value included.
func TestPollOrder(t *testing.T) {
	for _, tc := range []struct {
		typ  ebpf.MapType
		open func(context.Context, *ebpf.Map, ...pump.Option) (*pump.Source[uint64], error)
		want []uint64
	}{
		{ebpf.Queue, pump.Queue[uint64], seq(0, 50)},
		{ebpf.Stack, pump.Stack[uint64], seq(49, -1)},
	} {
		t.Run(tc.typ.String(), func(t *testing.T) {
			m := newQueue(t, tc.typ, 8, 64)
			run(t, pushProducer(t, m), 50)
			src, err := tc.open(t.Context(), m)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for range 50 {
				v, _ := recv(t, src.C())
				got = append(got, v)
			}
			if err := src.Close(); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			st := src.Stats()
			if st.Received != 50 || st.Delivered != 50 || st.EmptyPolls == 0 {
				t.Fatalf("stats %+v, want 50 received and delivered, some empty polls", st)
			}
		})
	}
}

// TestPollDisjoint: several pumps on one queue get disjoint values that
// together are everything pushed.
func TestPollDisjoint(t *testing.T) {
	const n = 2000
	m := newQueue(t, ebpf.Queue, 8, n)
	var srcs []*pump.Source[uint64]
	for range 3 {
		src, err := pump.Queue[uint64](t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, src)
	}
	got := make([][]uint64, len(srcs))
	var wg sync.WaitGroup
	for i, src := range srcs {
		wg.Go(func() {
			for v := range src.C() {
				got[i] = append(got[i], v)
			}
		})
	}
	run(t, pushProducer(t, m), n)
	for _, src := range srcs {
		if err := src.Close(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	all := slices.Concat(got...)
	slices.Sort(all)
	if !slices.Equal(all, seq(0, n)) {
		t.Fatalf("got %d values, want each of 0..%d exactly once", len(all), n-1)
	}
}

// TestWriterOrder: values sent to a writer are pushed in order; a Queue
// pump reads them FIFO, a Stack map holds them LIFO.
func TestWriterOrder(t *testing.T) {
	for _, tc := range []struct {
		typ  ebpf.MapType
		open func(context.Context, *ebpf.Map, ...pump.Option) (*pump.Sink[uint64], error)
		want []uint64
	}{
		{ebpf.Queue, pump.QueueWriter[uint64], seq(0, 20)},
		{ebpf.Stack, pump.StackWriter[uint64], seq(19, -1)},
	} {
		t.Run(tc.typ.String(), func(t *testing.T) {
			m := newQueue(t, tc.typ, 8, 32)
			w, err := tc.open(t.Context(), m)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Peek(); !errors.Is(err, maps.ErrEmpty) {
				t.Fatalf("Peek on empty: %v, want ErrEmpty", err)
			}
			for i := range uint64(20) {
				w.C() <- i
			}
			awaitDelivered(t, w, 20)
			if v, err := w.Peek(); err != nil || v != tc.want[0] {
				t.Fatalf("Peek: %d, %v; want %d", v, err, tc.want[0])
			}
			close(w.C())
			if err := w.Wait(); err != nil {
				t.Fatal(err)
			}
			// A stopped sink has released its clone of the map.
			if _, err := w.Peek(); !errors.Is(err, maps.ErrClosed) {
				t.Fatalf("Peek after the sink stopped: %v, want ErrClosed", err)
			}
			if got := popAll(t, m); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if st := w.Stats(); st.Received != 20 || st.Delivered != 20 {
				t.Fatalf("stats %+v, want 20 received and delivered", st)
			}
		})
	}
}

// TestWriterFull applies each full policy to a queue of 4 with no consumer.
func TestWriterFull(t *testing.T) {
	for _, tc := range []struct {
		full    pump.FullPolicy
		want    []uint64
		wantErr error
		stats   pump.Stats
	}{
		{pump.FullDrop, seq(0, 4), nil, pump.Stats{Received: 10, Delivered: 4, Dropped: 6}},
		{pump.FullOverwrite, seq(6, 10), nil, pump.Stats{Received: 10, Delivered: 10, Overwritten: 6}},
		{pump.FullFail, seq(0, 4), maps.ErrFull, pump.Stats{Received: 5, Delivered: 4, Dropped: 1}},
	} {
		t.Run(tc.full.String(), func(t *testing.T) {
			m := newQueue(t, ebpf.Queue, 8, 4)
			w, err := pump.QueueWriter[uint64](t.Context(), m, pump.WithFull(tc.full))
			if err != nil {
				t.Fatal(err)
			}
			for i := range uint64(10) {
				select {
				case w.C() <- i:
				case <-w.Done():
				}
			}
			close(w.C())
			if err := w.Wait(); !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("Wait: %v, want %v", err, tc.wantErr)
			}
			if got := popAll(t, m); !slices.Equal(got, tc.want) {
				t.Fatalf("queue holds %v, want %v", got, tc.want)
			}
			st := w.Stats()
			// FullFail: a sender blocked on C() when the writer stopped may
			// have its value taken, and counted dropped, at the stop.
			var extra uint64
			if tc.full == pump.FullFail && st.Received == tc.stats.Received+1 {
				extra = 1
			}
			if st.Received != tc.stats.Received+extra || st.Delivered != tc.stats.Delivered ||
				st.Dropped != tc.stats.Dropped+extra || st.Overwritten != tc.stats.Overwritten {
				t.Fatalf("stats %+v, want %+v (FullFail: one more received and dropped at most)", st, tc.stats)
			}
		})
	}
	t.Run("overwrite/stack", func(t *testing.T) {
		// The kernel evicts the oldest value of a stack too: the bottom.
		m := newQueue(t, ebpf.Stack, 8, 4)
		w, err := pump.StackWriter[uint64](t.Context(), m, pump.WithFull(pump.FullOverwrite))
		if err != nil {
			t.Fatal(err)
		}
		for i := range uint64(10) {
			w.C() <- i
		}
		close(w.C())
		if err := w.Wait(); err != nil {
			t.Fatal(err)
		}
		if got := popAll(t, m); !slices.Equal(got, seq(9, 5)) {
			t.Fatalf("stack holds %v, want %v", got, seq(9, 5))
		}
		if st := w.Stats(); st.Received != 10 || st.Delivered != 10 || st.Overwritten != 6 || st.Dropped != 0 {
			t.Fatalf("stats %+v, want 10 received and delivered, 6 overwritten", st)
		}
	})
	t.Run("block", func(t *testing.T) {
		m := newQueue(t, ebpf.Queue, 8, 4)
		w, err := pump.QueueWriter[uint64](t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		src, err := pump.Queue[uint64](t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for i := range uint64(100) {
				w.C() <- i
			}
			close(w.C())
		}()
		for want := range uint64(100) {
			if v, _ := recv(t, src.C()); v != want {
				t.Fatalf("got %d, want %d", v, want)
			}
		}
		if err := w.Wait(); err != nil {
			t.Fatal(err)
		}
		if err := src.Close(); err != nil {
			t.Fatal(err)
		}
		if st := w.Stats(); st.Delivered != 100 || st.Dropped != 0 {
			t.Fatalf("writer stats %+v, want 100 delivered", st)
		}
	})
}

// TestWriterCloseDrains: Close without closing C() pushes every value whose
// send completed, including those in C()'s buffer.
func TestWriterCloseDrains(t *testing.T) {
	m := newQueue(t, ebpf.Queue, 8, 100)
	w, err := pump.QueueWriter[uint64](t.Context(), m, pump.WithBuffer(64))
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint64(50) {
		w.C() <- i
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := popAll(t, m); !slices.Equal(got, seq(0, 50)) {
		t.Fatalf("queue holds %v, want 0..49", got)
	}
}

// TestChannels: a Duplex pushes what is sent on In() and delivers it on
// Out(); FIFO for a queue, LIFO for what a stack already holds.
func TestChannels(t *testing.T) {
	t.Run("queue", func(t *testing.T) {
		m := newQueue(t, ebpf.Queue, 8, 16)
		ctx, cancel := context.WithCancel(t.Context())
		d, err := pump.QueueChannel[uint64](ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		closeOnCleanup(t, cancel, d)
		go func() {
			for i := range uint64(100) {
				d.In() <- i
			}
		}()
		for want := range uint64(100) {
			if v, _ := recv(t, d.Out()); v != want {
				t.Fatalf("got %d, want %d", v, want)
			}
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if st := d.Stats(); st.Received != 200 || st.Delivered != 200 {
			t.Fatalf("stats %+v, want 200 received and delivered (both directions)", st)
		}
	})
	t.Run("stack", func(t *testing.T) {
		m := newQueue(t, ebpf.Stack, 8, 16)
		run(t, pushProducer(t, m), 10)
		ctx, cancel := context.WithCancel(t.Context())
		d, err := pump.StackChannel[uint64](ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		closeOnCleanup(t, cancel, d)
		for _, want := range seq(9, -1) {
			if v, _ := recv(t, d.Out()); v != want {
				t.Fatalf("got %d, want %d", v, want)
			}
		}
		d.In() <- 42
		if v, _ := recv(t, d.Out()); v != 42 {
			t.Fatalf("got %d, want 42", v)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestPollStop: Close and ctx cancel stop idle pollers and writers at once.
func TestPollStop(t *testing.T) {
	m := newQueue(t, ebpf.Queue, 8, 16)
	cause := errors.New("test cause")
	ctx, cancel := context.WithCancelCause(t.Context())
	src, err := pump.Queue[uint64](ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pump.QueueWriter[uint64](ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	cancel(cause)
	if err := src.Wait(); !errors.Is(err, cause) {
		t.Fatalf("source Wait: %v, want %v", err, cause)
	}
	if err := w.Wait(); !errors.Is(err, cause) {
		t.Fatalf("writer Wait: %v, want %v", err, cause)
	}
	src, err = pump.Queue[uint64](t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestQueueHoldsOne: with the default unbuffered C() and no receiver, a
// queue pump pops at most one value.
func TestQueueHoldsOne(t *testing.T) {
	m := newQueue(t, ebpf.Queue, 8, 16)
	for i := range uint64(5) {
		pushRaw(t, m, i)
	}
	ctx, cancel := context.WithCancel(t.Context())
	src, err := pump.Queue[uint64](ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := recv(t, src.C()); v != 0 {
		t.Fatalf("got %d, want 0", v)
	}
	cancel()
	src.Wait()
	// One value may have been in hand (counted as dropped); the rest stay.
	rest := popAll(t, m)
	st := src.Stats()
	if st.Received != 1+st.Dropped || len(rest) != 4-int(st.Dropped) || st.Dropped > 1 {
		t.Fatalf("stats %+v with %v left in the queue: want at most one value in hand", st, rest)
	}
}

// TestWriterEncoder: values the encoder rejects or sizes wrongly are
// skipped and counted; a panicking encoder stops the writer with ErrPanic.
func TestWriterEncoder(t *testing.T) {
	m := newQueue(t, ebpf.Queue, 8, 16)
	w, err := pump.QueueWriter[int](t.Context(), m, pump.WithEncoder(func(v int) ([]byte, error) {
		switch {
		case v < 0:
			return nil, errors.New("negative")
		case v == 99:
			return []byte{1, 2, 3}, nil // wrong size
		case v == 666:
			panic("encoder boom")
		}
		b := make([]byte, 8)
		b[0] = byte(v)
		return b, nil
	}), pump.WithDecoder(func(b []byte) (int, error) { return int(b[0]), nil }))
	if err != nil {
		t.Fatal(err)
	}
	w.C() <- 1
	awaitDelivered(t, w, 1)
	if v, err := w.Peek(); err != nil || v != 1 {
		t.Fatalf("Peek: %d, %v; want 1 (decoded with WithDecoder)", v, err)
	}
	for _, v := range []int{-1, 99, 2} {
		w.C() <- v
	}
	w.C() <- 666
	err = w.Wait()
	if !errors.Is(err, pump.ErrPanic) || !strings.Contains(err.Error(), "encoder boom") {
		t.Fatalf("Wait: %v, want ErrPanic carrying the value", err)
	}
	if got := popAll(t, m); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("queue holds %v, want [1 2]", got)
	}
	if st := w.Stats(); st.Received != 5 || st.Delivered != 2 || st.DecodeErrors != 3 {
		t.Fatalf("stats %+v, want 5 received, 2 delivered, 3 encode errors", st)
	}
}

// TestWriterCancelCounts: a value in hand when ctx is cancelled (the map
// is full and the writer blocks) is counted as dropped.
func TestWriterCancelCounts(t *testing.T) {
	m := newQueue(t, ebpf.Queue, 8, 1)
	ctx, cancel := context.WithCancel(t.Context())
	w, err := pump.QueueWriter[uint64](ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	w.C() <- 1
	w.C() <- 2 // received: the writer now retries against a full map
	cancel()
	if err := w.Wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait: %v, want context.Canceled", err)
	}
	st := w.Stats()
	if st.Received != 2 || st.Delivered != 1 || st.Dropped != 1 {
		t.Fatalf("stats %+v, want 2 received, 1 delivered, 1 dropped", st)
	}
}

// TestWriterFullBlockRetries: a writer facing a full map waits, counted,
// for the process's waiting goroutine to look (no pump of this process
// pops, so nothing else wakes it), retries, and pushes the value in order
// once a raw pop made room.
func TestWriterFullBlockRetries(t *testing.T) {
	m := newQueue(t, ebpf.Queue, 8, 4)
	ctx, cancel := context.WithTimeoutCause(t.Context(), 30*time.Second, errors.New("the blocked writer was never woken"))
	defer cancel()
	w, err := pump.QueueWriter[uint64](ctx, m, pump.WithPoll(time.Millisecond, 4*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint64(5) {
		w.C() <- i
	}
	for w.Stats().FullRetries == 0 { // the fifth value found the map full
		if ctx.Err() != nil {
			t.Fatalf("stats %+v: the fifth value never waited for room", w.Stats())
		}
		runtime.Gosched()
	}
	var v uint64
	if err := m.LookupAndDelete(nil, unsafe.Pointer(&v)); err != nil || v != 0 {
		t.Fatalf("pop: %d, %v", v, err)
	}
	close(w.C())
	if err := w.Wait(); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.FullRetries == 0 || st.Delivered != 5 || st.Dropped != 0 {
		t.Fatalf("stats %+v, want 5 delivered after at least one retry", st)
	}
	if got := popAll(t, m); !slices.Equal(got, seq(1, 5)) {
		t.Fatalf("queue holds %v, want [1 2 3 4]", got)
	}
}

// TestChannelCancel: cancelling stops both directions with the cause, once.
func TestChannelCancel(t *testing.T) {
	m := newQueue(t, ebpf.Stack, 8, 4)
	cause := errors.New("test cause")
	ctx, cancel := context.WithCancelCause(t.Context())
	d, err := pump.StackChannel[uint64](ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	cancel(cause)
	if err := d.Wait(); err != cause {
		t.Fatalf("Wait: %v, want %v", err, cause)
	}
}
