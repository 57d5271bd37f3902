package pump_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/maps"
	"github.com/bpfchan/bpfchan/pump"
)

// seqBytes returns a value of size bytes (at least 8) starting with seq,
// the drainer's sequence number.
func seqBytes(seq uint64, size int) []byte {
	b := make([]byte, size)
	binary.NativeEndian.PutUint64(b, seq)
	return b
}

// processCPU is the process's user and system time so far.
func processCPU(t *testing.T) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestReviewUserRingFullWaitSpins: a writer that waits for room must stay
// parked until a drain frees room or its periodic look is due. Here no
// BPF program drains and the look is an hour away, so after its first
// wait the writer has no reason to wake at all.
//
// The kernel reports EPOLLOUT on a user ring buffer whenever ANY byte is
// free (ringbuf_map_poll_user: committed data < ring size), not when a
// record of the size the writer waits to write fits. When the records
// leave a remainder smaller than the next record (24-byte records in a
// 4096-byte ring leave 16 bytes), every Arm (EPOLL_CTL_MOD of the
// one-shot descriptor) queues the event at once, the loop wakes the
// writer, the writer finds no room, counts a FullRetry and arms again: a
// busy loop of two goroutines and one epoll_ctl per turn, for as long as
// the ring stays full. With records that fill the ring exactly (16 bytes)
// the ring reports no EPOLLOUT and the writer parks as designed.
//
// The observation window is a failure bound, not a timing assertion: with
// nothing to wake it, a correct writer wakes a bounded number of times
// however long the window is, a spinning one hundreds of times. Park's
// return is a hint (netpoll): the event that Hold's epoll_ctl queues at
// once (the ring has a free byte) wakes the writer once more when it
// reaches the loop after the writer's Arm, so the bound is one more
// retry. (A one-shot descriptor used to be added to epoll armed, and the
// event that queued, read by the loop just before the Hold and applied
// just after, was a second one, now and then.)
func TestReviewUserRingFullWaitSpins(t *testing.T) {
	const window = 300 * time.Millisecond
	for _, tc := range []struct {
		name    string
		size    int // payload bytes: the record takes size+8
		fit     int // records the 4096-byte ring holds
		leftNow int // bytes free once they are written
	}{
		{"records fill the ring exactly", 8, 256, 0},
		{"16 bytes left over", 16, 170, 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newUserRing(t, 4096)
			ctx, cancel := context.WithCancel(t.Context())
			w, err := pump.UserRingBuf[[]byte](ctx, m, pump.WithDrainInterval(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			closeOnCleanup(t, cancel, w)
			for i := range tc.fit + 1 {
				w.C() <- seqBytes(uint64(i), tc.size)
			}
			awaitStats(t, w, "a wait for room", blocked)
			before, cpu0 := w.Stats(), processCPU(t)
			// The observation window: nothing is synchronised on it.
			<-time.After(window)
			after, cpu := w.Stats(), processCPU(t)-cpu0
			t.Logf("%d bytes free: FullRetries %d -> %d, process CPU %v, with no drain",
				tc.leftNow, before.FullRetries, after.FullRetries, cpu)
			if after.FullRetries > before.FullRetries+1 {
				t.Errorf("FullRetries went from %d to %d with no drain and no look due, want the writer parked (a spin on EPOLLOUT, which means any byte is free)",
					before.FullRetries, after.FullRetries)
			}
		})
	}
}

// TestReviewUserRingAbortMidRun: ctx cancelled while a run is being
// written (not while waiting for room). The writer must not commit the
// run: what it wrote is counted Dropped, the kernel sees nothing, and the Stats identity holds the
// moment Done is closed, before Wait. The encoder holds the first value
// until C()'s buffer is full, so the run is exact: values 0..5 are
// written, the encoder of value 5 cancels ctx, 6..9 stay in C(), and the
// stop takes them and counts them received and dropped (rule 4).
func TestReviewUserRingAbortMidRun(t *testing.T) {
	m := newUserRing(t, 4096)
	d := newDrainer(t, m)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	filled := make(chan struct{})
	w, err := pump.UserRingBuf[uint64](ctx, m, pump.WithBuffer(16), pump.WithEncoder(func(v uint64) ([]byte, error) {
		switch v {
		case 0:
			<-filled
		case 5:
			cancel()
		}
		return binary.NativeEndian.AppendUint64(nil, v), nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	w.C() <- 0
	for i := range uint64(9) {
		w.C() <- i + 1
	}
	close(filled)
	<-w.Done()
	st := w.Stats()
	want := pump.Stats{Received: 10, Dropped: 10}
	if st.Received != want.Received || st.Delivered != want.Delivered || st.Dropped != want.Dropped {
		t.Errorf("stats at Done %+v, want %+v", st, want)
	}
	wantIdentity(t, st)
	if err := w.Wait(); err != context.Canceled {
		t.Errorf("Wait: %v, want %v", err, context.Canceled)
	}
	if s := drained(t, d); s.Records != 0 {
		t.Errorf("the kernel drained %d records of an aborted run, want none", s.Records)
	}
}

// TestReviewUserRingSizesWrap: records of every padding class, including
// one that fills the ring exactly, written while a BPF program drains:
// they wrap around the ring's end at every offset, and arrive once, in
// order, with the Stats identity. (Passes; with the leftover sizes the
// writer spins while it waits, see TestReviewUserRingFullWaitSpins.)
func TestReviewUserRingSizesWrap(t *testing.T) {
	for _, size := range []int{8, 13, 16, 100, 4088} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			const n = 3000
			m := newUserRing(t, 4096)
			d := newDrainer(t, m)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			w, err := pump.UserRingBuf[uint64](ctx, m, pump.WithBuffer(64), pump.WithEncoder(func(v uint64) ([]byte, error) {
				return seqBytes(v, size), nil
			}))
			if err != nil {
				t.Fatal(err)
			}
			closeOnCleanup(t, cancel, w)
			drainErr := make(chan error, 1)
			go func() { drainErr <- d.Until(ctx, n, 1) }()
			sendAll(t, w, n)
			if err := w.Wait(); err != nil {
				t.Fatal(err)
			}
			if err := <-drainErr; err != nil {
				t.Fatal(err)
			}
			wantRecords(t, drained(t, d), n)
			if st := w.Stats(); st.Received != n || st.Delivered != n {
				t.Fatalf("stats %+v, want %d received and delivered", st, n)
			}
		})
	}
}

// TestReviewSinkFailLeavesSendsUncounted: a sink that stops on an error
// (here FullFail; a cancel does the same, see
// TestReviewUserRingAbortMidRun) leaves the values still in C()'s buffer
// neither pushed nor counted: their senders' sends completed, and Stats
// never mention them, so the caller cannot tell from Stats what was lost.
// A source in the same spot takes back what sits in C() and counts it
// Dropped (rule 4). The encoder holds value 256 (the first that does not
// fit) until 8 more sends have completed into C()'s buffer of 8. The same
// holds for queue writers (the loop is shared).
func TestReviewSinkFailLeavesSendsUncounted(t *testing.T) {
	m := newUserRing(t, 4096) // 256 records of 16 bytes
	filled := make(chan struct{})
	w, err := pump.UserRingBuf[uint64](t.Context(), m, pump.WithBuffer(8), pump.WithFull(pump.FullFail),
		pump.WithEncoder(func(v uint64) ([]byte, error) {
			if v == 256 {
				<-filled
			}
			return binary.NativeEndian.AppendUint64(nil, v), nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	sent := uint64(0)
	for ; sent < 257+8; sent++ {
		w.C() <- sent
	}
	close(filled)
	if err := w.Wait(); !errors.Is(err, maps.ErrFull) {
		t.Fatalf("Wait: %v, want maps.ErrFull", err)
	}
	st := w.Stats()
	wantIdentity(t, st)
	if st.Received != sent {
		t.Errorf("stats %+v after %d completed sends: %d values sent on C() are not counted anywhere, want them Received and Dropped",
			st, sent, sent-st.Received)
	}
}
