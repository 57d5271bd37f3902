package pump_test

import (
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/producer"
	"github.com/bpfchan/bpfchan/maps"
	"github.com/bpfchan/bpfchan/pump"
)

func newUserRing(tb testing.TB, size uint32) *ebpf.Map {
	return newMap(tb, &ebpf.MapSpec{Name: "test_urb", Type: ebpf.UserRingbuf, MaxEntries: size})
}

func newDrainer(tb testing.TB, m *ebpf.Map, opts ...producer.Option) *producer.Drainer {
	tb.Helper()
	d, err := producer.NewUserRingDrain(m, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

// drained runs d once and returns all it has read so far; a drain call
// that failed (the kernel refused a record) fails the test.
func drained(tb testing.TB, d *producer.Drainer) producer.DrainStats {
	tb.Helper()
	if err := d.Run(1); err != nil {
		tb.Fatal(err)
	}
	s, err := d.Stats()
	if err != nil {
		tb.Fatal(err)
	}
	if s.Failed != 0 {
		tb.Fatalf("%d drain calls failed, the last with errno %d", s.Failed, -s.LastErr)
	}
	return s
}

// wantRecords checks that the drainer has read exactly the sequence
// numbers 0..n-1, in order.
func wantRecords(tb testing.TB, s producer.DrainStats, n uint64) {
	tb.Helper()
	if s.Records != n || s.Next != n || s.Disorder != 0 || s.Sum != n*(n-1)/2 || s.Short != 0 {
		tb.Fatalf("drained %+v, want the records 0..%d in order", s, int64(n)-1)
	}
}

// awaitStats returns once ok holds for the sink's Stats, or fails after
// failAfter.
func awaitStats[T any](tb testing.TB, s *pump.Sink[T], what string, ok func(pump.Stats) bool) pump.Stats {
	tb.Helper()
	deadline := time.Now().Add(failAfter)
	for {
		st := s.Stats()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			tb.Fatalf("stats %+v after %v, want %s", st, failAfter, what)
		}
		select {
		case <-s.Done():
			if st := s.Stats(); !ok(st) {
				tb.Fatalf("the sink stopped (%v) with stats %+v, want %s", s.Wait(), st, what)
			}
			return s.Stats()
		default:
			runtime.Gosched()
		}
	}
}

func blocked(st pump.Stats) bool { return st.FullRetries > 0 }

// sendAll sends 0..n-1 on s.C() from a goroutine the test waits for, then
// closes C() (unless the sink stopped first).
func sendAll(t *testing.T, s *pump.Sink[uint64], n uint64) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			select {
			case s.C() <- i:
			case <-s.Done():
				return
			}
		}
		close(s.C())
	}()
	t.Cleanup(wg.Wait)
}

// wantIdentity checks that a stopped sink accounts for every value.
func wantIdentity(tb testing.TB, st pump.Stats) {
	tb.Helper()
	if st.Received != st.Delivered+st.Dropped+st.DecodeErrors {
		tb.Fatalf("stats %+v: received != delivered + dropped + decode errors", st)
	}
}

// TestUserRingExact: 1,000,000 values through a 64 KiB ring while a BPF
// program drains it concurrently: every value arrives, once, in order,
// with the ring full now and then (the writer waits for the drains).
func TestUserRingExact(t *testing.T) {
	const n = 1_000_000
	m := newUserRing(t, 1<<16)
	d := newDrainer(t, m)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	w, err := pump.UserRingBuf[rec16](ctx, m, pump.WithBuffer(256))
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, cancel, w)
	drainErr := make(chan error, 1)
	go func() { drainErr <- d.Until(ctx, n, 64) }()
	for i := range uint64(n) {
		select {
		case w.C() <- rec16{Seq: i}:
		case <-w.Done():
			t.Fatalf("the writer stopped after %d values: %v", i, w.Wait())
		}
	}
	close(w.C())
	if err := w.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := <-drainErr; err != nil {
		t.Fatal(err)
	}
	wantRecords(t, drained(t, d), n)
	st := w.Stats()
	if st.Received != n || st.Delivered != n || st.Dropped != 0 || st.DecodeErrors != 0 {
		t.Fatalf("stats %+v, want %d received and delivered", st, n)
	}
	t.Logf("waits for room: %d", st.FullRetries)
}

// TestUserRingFullBlock: a writer facing a full ring waits, and the
// drain that frees space wakes it: by its wake-up (the periodic look is an
// hour away), or, for a drain made with BPF_RB_NO_WAKEUP, by the periodic
// look.
func TestUserRingFullBlock(t *testing.T) {
	for _, tc := range []struct {
		name     string
		drainer  []producer.Option
		interval time.Duration
	}{
		{"wakeup", nil, time.Hour},
		{"no wakeup", []producer.Option{producer.NoWakeup()}, 5 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 300 // 256 records of 16 bytes fill 4096
			m := newUserRing(t, 4096)
			d := newDrainer(t, m, tc.drainer...)
			ctx, cancel := context.WithCancel(t.Context())
			w, err := pump.UserRingBuf[uint64](ctx, m, pump.WithDrainInterval(tc.interval))
			if err != nil {
				t.Fatal(err)
			}
			closeOnCleanup(t, cancel, w)
			sendAll(t, w, n)
			// A snapshot taken while the pump publishes may mix old and
			// new counters: wait for the one it published before parking.
			awaitStats(t, w, "256 delivered and a wait for room", func(st pump.Stats) bool {
				return blocked(st) && st.Delivered == 256
			})
			if s := drained(t, d); s.Records != 256 {
				t.Fatalf("first drain read %d records, want 256", s.Records)
			}
			if err := w.Wait(); err != nil {
				t.Fatal(err)
			}
			wantRecords(t, drained(t, d), n)
			st := w.Stats()
			if st.Received != n || st.Delivered != n || st.Dropped != 0 {
				t.Fatalf("stats %+v, want %d received and delivered", st, n)
			}
		})
	}
}

// TestUserRingFullPolicies: FullDrop drops what does not fit, counted;
// FullFail stops the writer with maps.ErrFull. Either way what was written
// before is committed.
func TestUserRingFullPolicies(t *testing.T) {
	for _, tc := range []struct {
		full    pump.FullPolicy
		wantErr error
		stats   pump.Stats
	}{
		{pump.FullDrop, nil, pump.Stats{Received: 300, Delivered: 256, Dropped: 44}},
		{pump.FullFail, maps.ErrFull, pump.Stats{Received: 257, Delivered: 256, Dropped: 1}},
	} {
		t.Run(tc.full.String(), func(t *testing.T) {
			m := newUserRing(t, 4096)
			d := newDrainer(t, m)
			w, err := pump.UserRingBuf[uint64](t.Context(), m, pump.WithFull(tc.full))
			if err != nil {
				t.Fatal(err)
			}
			sendAll(t, w, 300)
			err = w.Wait()
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("Wait: %v, want %v", err, tc.wantErr)
			}
			if err != nil && (!strings.Contains(err.Error(), `UserRingbuf map "test_urb" (id `) || strings.Contains(err.Error(), "\n")) {
				t.Fatalf("error %q: want one line naming the map", err)
			}
			st := w.Stats()
			// FullFail: a sender blocked on C() when the writer stopped may
			// have its value taken, and counted dropped, at the stop.
			extra := st.Received - tc.stats.Received
			if tc.full != pump.FullFail {
				extra = 0
			}
			if st.Received != tc.stats.Received+extra || st.Delivered != tc.stats.Delivered || st.Dropped != tc.stats.Dropped+extra || extra > 1 {
				t.Fatalf("stats %+v, want %+v (FullFail: one more received and dropped at most)", st, tc.stats)
			}
			wantIdentity(t, st)
			wantRecords(t, drained(t, d), 256)
		})
	}
}

// TestUserRingCloseCommits: Close commits every value whose send
// completed, those still in C()'s buffer included, and waits for room to
// do so.
func TestUserRingCloseCommits(t *testing.T) {
	t.Run("buffered", func(t *testing.T) {
		m := newUserRing(t, 4096)
		d := newDrainer(t, m)
		w, err := pump.UserRingBuf[uint64](t.Context(), m, pump.WithBuffer(100))
		if err != nil {
			t.Fatal(err)
		}
		for i := range uint64(100) {
			w.C() <- i
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		wantRecords(t, drained(t, d), 100)
		if st := w.Stats(); st.Received != 100 || st.Delivered != 100 {
			t.Fatalf("stats %+v, want 100 received and delivered", st)
		}
	})
	t.Run("full ring", func(t *testing.T) {
		m := newUserRing(t, 4096)
		d := newDrainer(t, m)
		w, err := pump.UserRingBuf[uint64](t.Context(), m, pump.WithBuffer(50))
		if err != nil {
			t.Fatal(err)
		}
		for i := range uint64(300) {
			w.C() <- i
		}
		awaitStats(t, w, "a wait for room", blocked)
		closed := make(chan error, 1)
		go func() { closed <- w.Close() }()
		if err := d.Until(t.Context(), 300, 1); err != nil {
			t.Fatal(err)
		}
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		wantRecords(t, drained(t, d), 300)
		if st := w.Stats(); st.Received != 300 || st.Delivered != 300 {
			t.Fatalf("stats %+v, want 300 received and delivered", st)
		}
	})
}

// TestUserRingCancel: cancelling ctx while the writer waits for room stops
// it at once with the cause; the value in hand is counted dropped.
func TestUserRingCancel(t *testing.T) {
	m := newUserRing(t, 4096)
	d := newDrainer(t, m)
	cause := errors.New("test cause")
	ctx, cancel := context.WithCancelCause(t.Context())
	w, err := pump.UserRingBuf[uint64](ctx, m, pump.WithDrainInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	sendAll(t, w, 300)
	awaitStats(t, w, "a wait for room", blocked)
	cancel(cause)
	if err := w.Wait(); err != cause {
		t.Fatalf("Wait: %v, want %v", err, cause)
	}
	st := w.Stats()
	// A sender blocked on C() at the cancel may have its value taken, and
	// counted dropped, at the stop.
	if st.Delivered != 256 || st.Received < 257 || st.Received > 258 || st.Dropped != st.Received-256 {
		t.Fatalf("stats %+v, want 256 delivered, 257 or 258 received, the rest dropped", st)
	}
	wantRecords(t, drained(t, d), 256)
}

// TestUserRingBytes: []byte values become records of their own length (an
// empty one too); one that cannot fit the ring is skipped and counted.
func TestUserRingBytes(t *testing.T) {
	m := newUserRing(t, 4096)
	d := newDrainer(t, m)
	w, err := pump.UserRingBuf[[]byte](t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	rec := func(seq uint64, size int) []byte {
		b := make([]byte, size)
		binary.NativeEndian.PutUint64(b, seq)
		return b
	}
	// The 4088-byte record needs the whole ring: it waits for the drains.
	drainErr := make(chan error, 1)
	go func() { drainErr <- d.Until(t.Context(), 3, 1) }()
	for _, b := range [][]byte{rec(0, 8), rec(1, 100), make([]byte, 5000), rec(2, 4088), nil} {
		w.C() <- b
	}
	close(w.C())
	if err := w.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := <-drainErr; err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	if st.Received != 5 || st.Delivered != 4 || st.DecodeErrors != 1 {
		t.Fatalf("stats %+v, want 5 received, 4 delivered, 1 too big", st)
	}
	s := drained(t, d)
	if s.Records != 3 || s.Disorder != 0 || s.Short != 1 {
		t.Fatalf("drained %+v, want records 0, 1, 2 and an empty one", s)
	}
}

// TestUserRingEncoder: WithEncoder's bytes are the record; a rejected
// value is counted, a panic stops the writer with ErrPanic.
func TestUserRingEncoder(t *testing.T) {
	m := newUserRing(t, 4096)
	d := newDrainer(t, m)
	w, err := pump.UserRingBuf[int](t.Context(), m, pump.WithEncoder(func(v int) ([]byte, error) {
		switch {
		case v < 0:
			return nil, errors.New("negative")
		case v == 666:
			panic("encoder boom")
		}
		return binary.NativeEndian.AppendUint64(nil, uint64(v)), nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []int{0, -1, 1, 666} {
		w.C() <- v
	}
	err = w.Wait()
	if !errors.Is(err, pump.ErrPanic) || !strings.Contains(err.Error(), "encoder boom") {
		t.Fatalf("Wait: %v, want ErrPanic carrying the value", err)
	}
	st := w.Stats()
	if st.Received != 4 || st.Delivered != 2 || st.DecodeErrors != 2 {
		t.Fatalf("stats %+v, want 4 received, 2 delivered, 2 encode errors", st)
	}
	wantRecords(t, drained(t, d), 2)
}

// TestUserRingPeek: a user ring buffer cannot be read back.
func TestUserRingPeek(t *testing.T) {
	m := newUserRing(t, 4096)
	w, err := pump.UserRingBuf[uint64](t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Peek()
	if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "test_urb") {
		t.Fatalf("Peek: %v, want ErrUnsupported naming the map", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestUserRingBadInput: each mistake is an error at construction that
// names the map and the problem, on one line, and starts nothing.
func TestUserRingBadInput(t *testing.T) {
	urb := newUserRing(t, 4096)
	queue := newQueue(t, ebpf.Queue, 8, 4)
	closed := newUserRing(t, 4096)
	closed.Close()
	ctx := t.Context()
	first, err := pump.UserRingBuf[uint64](ctx, urb)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	other := newUserRing(t, 4096)
	for _, tc := range []struct {
		name string
		open func() error
		is   error
		says []string
	}{
		{"nil map", func() error { _, err := pump.UserRingBuf[uint64](ctx, nil); return err }, maps.ErrMapType, []string{"nil map", "UserRingbuf"}},
		{"queue", func() error { _, err := pump.UserRingBuf[uint64](ctx, queue); return err }, maps.ErrMapType, []string{"test_q", "Queue", "UserRingbuf"}},
		{"closed map", func() error { _, err := pump.UserRingBuf[uint64](ctx, closed); return err }, maps.ErrClosed, []string{"UserRingbuf"}},
		{"second writer", func() error { _, err := pump.UserRingBuf[uint64](ctx, urb); return err }, pump.ErrBusy, []string{"test_urb", "user ring buffer writer"}},
		{"record too big", func() error { _, err := pump.UserRingBuf[[4089]byte](ctx, other); return err }, pump.ErrSize, []string{"test_urb", "4089", "4088", "4096"}},
		{"overwrite", func() error {
			_, err := pump.UserRingBuf[uint64](ctx, other, pump.WithFull(pump.FullOverwrite))
			return err
		}, pump.ErrOption, []string{"WithFull(overwrite)"}},
		{"poll", func() error {
			_, err := pump.UserRingBuf[uint64](ctx, other, pump.WithPoll(time.Millisecond, time.Second))
			return err
		}, pump.ErrOption, []string{"WithPoll"}},
		{"decoder", func() error {
			_, err := pump.UserRingBuf[uint64](ctx, other, pump.WithDecoder(func([]byte) (uint64, error) { return 0, nil }))
			return err
		}, pump.ErrOption, []string{"WithDecoder"}},
		{"encoder of another type", func() error {
			_, err := pump.UserRingBuf[uint64](ctx, other, pump.WithEncoder(func(int) ([]byte, error) { return nil, nil }))
			return err
		}, pump.ErrOption, []string{"WithEncoder", "uint64"}},
		{"type without a size", func() error { _, err := pump.UserRingBuf[string](ctx, other); return err }, nil, []string{"string", "fixed binary size"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.open()
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q does not match %v", err, tc.is)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
		})
	}
	// Once the first writer has stopped, the map takes another.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := pump.UserRingBuf[uint64](ctx, urb)
	if err != nil {
		t.Fatalf("a writer after the first stopped: %v", err)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
}
