package netpoll_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/netpoll"
	"github.com/bpfchan/bpfchan/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// failAfter bounds a test that would hang on a bug: a failure bound, not a
// timing assertion.
const failAfter = 30 * time.Second

func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func register(t *testing.T, s netpoll.Spec) *netpoll.Reg {
	t.Helper()
	r, err := netpoll.Register(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// bounded is a ctx that fails the test instead of hanging it.
func bounded(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeoutCause(t.Context(), failAfter, errors.New("no wake-up: the test would hang"))
	t.Cleanup(cancel)
	return ctx
}

func TestEventWakes(t *testing.T) {
	r, w := pipe(t)
	reg := register(t, netpoll.Spec{FD: int(r.Fd()), Events: unix.EPOLLIN})
	reg.Arm(true)
	if _, err := w.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Park(bounded(t), nil); err != nil {
		t.Fatal(err)
	}
}

// TestOneShotRearms: a one-shot descriptor's event that came while the
// owner was not waiting is delivered again when it arms, if the condition
// still holds.
func TestOneShotRearms(t *testing.T) {
	r, w := pipe(t)
	reg := register(t, netpoll.Spec{FD: int(r.Fd()), Events: unix.EPOLLIN, OneShot: true})
	for i := range 3 {
		if _, err := w.Write([]byte{1}); err != nil { // not waiting: the one shot is spent
			t.Fatal(err)
		}
		reg.Arm(false)
		if err := reg.Park(bounded(t), nil); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
}

func TestLookWakes(t *testing.T) {
	var ready atomic.Bool
	var looks atomic.Int32
	reg := register(t, netpoll.Spec{FD: -1, Ready: func() bool {
		looks.Add(1)
		return ready.Load()
	}, Min: time.Millisecond, Max: time.Millisecond})
	ready.Store(true)
	if err := reg.Wait(bounded(t), nil, true); err != nil {
		t.Fatal(err)
	}
	if looks.Load() == 0 {
		t.Fatal("woken without a look")
	}
}

func TestInterruptAndCancel(t *testing.T) {
	reg := register(t, netpoll.Spec{FD: -1})
	reg.Interrupt() // before the wait: the next one returns at once
	if err := reg.Wait(bounded(t), nil, true); err != nil {
		t.Fatal(err)
	}
	cause := errors.New("the cause")
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(cause)
	if err := reg.Wait(ctx, nil, true); err != cause {
		t.Fatalf("got %v, want the ctx's cause", err)
	}
	extra := make(chan struct{})
	close(extra)
	if err := reg.Wait(bounded(t), extra, true); err != nil {
		t.Fatal(err)
	}
}

// TestWakeOnlyWaiting: Wake reaches an owner that is waiting, and is dropped
// for one at work (which looks before it waits again).
func TestWakeOnlyWaiting(t *testing.T) {
	reg := register(t, netpoll.Spec{FD: -1, Min: time.Hour, Max: time.Hour})
	reg.Wake() // not waiting: dropped
	reg.Arm(true)
	reg.Wake()
	if err := reg.Park(bounded(t), nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := reg.Wait(ctx, nil, true); err != context.Canceled {
		t.Fatalf("a dropped Wake woke a later wait: got %v", err)
	}
}

// TestBackoff: while Ready stays false the period doubles up to Max.
func TestBackoff(t *testing.T) {
	looks := make(chan struct{}, 100)
	reg := register(t, netpoll.Spec{FD: -1, Ready: func() bool {
		looks <- struct{}{}
		return false
	}, Min: time.Millisecond, Max: 4 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- reg.Wait(ctx, nil, true) }()
	for range 5 {
		select {
		case <-looks:
		case <-time.After(failAfter):
			t.Fatal("no look")
		}
	}
	cancel()
	<-done
	if got, want := netpoll.Period(reg), 4*time.Millisecond; got != want {
		t.Fatalf("period after 5 looks: got %v, want %v", got, want)
	}
}

// TestNoMissedEdge: one byte at a time, each written after the owner
// consumed the previous one, so it usually parks before the byte arrives.
// Arm, look, Park never misses one.
func TestNoMissedEdge(t *testing.T) {
	rounds := 20000
	if testing.Short() {
		rounds = 2000
	}
	r, w := pipe(t)
	fd := int(r.Fd())
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	reg := register(t, netpoll.Spec{FD: fd, Events: unix.EPOLLIN})
	ack := make(chan struct{})
	writeErr := make(chan error, 1)
	go func() {
		for range rounds {
			if _, err := w.Write([]byte{1}); err != nil {
				writeErr <- err
				return
			}
			if _, ok := <-ack; !ok {
				break
			}
		}
		writeErr <- nil
	}()
	defer func() {
		close(ack)
		if err := <-writeErr; err != nil {
			t.Error(err)
		}
	}()
	var b [8]byte
	got := 0
	read := func() bool {
		k, _ := syscall.Read(fd, b[:])
		got += max(k, 0)
		return k > 0
	}
	ctx := bounded(t)
	for i := range rounds {
		for {
			reg.Arm(false)
			if read() {
				reg.Disarm()
				break
			}
			if err := reg.Park(ctx, nil); err != nil {
				t.Fatalf("round %d: %v (missed edge)", i, err)
			}
		}
		if i < rounds-1 {
			ack <- struct{}{}
		}
	}
	if got != rounds {
		t.Fatalf("read %d bytes, want %d", got, rounds)
	}
}

// TestCallersFlags: registering a descriptor changes nothing the caller
// can see on its file description.
func TestCallersFlags(t *testing.T) {
	r, _ := pipe(t)
	before, err := unix.FcntlInt(r.Fd(), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := netpoll.Register(netpoll.Spec{FD: int(r.Fd()), Events: unix.EPOLLIN})
	if err != nil {
		t.Fatal(err)
	}
	during, _ := unix.FcntlInt(r.Fd(), unix.F_GETFL, 0)
	reg.Close()
	after, _ := unix.FcntlInt(r.Fd(), unix.F_GETFL, 0)
	if during != before || after != before {
		t.Fatalf("flags %#x before, %#x during, %#x after", before, during, after)
	}
}

// TestCloseWhileLooking: thousands of registrations, closed at once from
// many goroutines while the loop looks at them; Ready is never called after
// its Close returned, and the loop stops with the last one.
func TestCloseWhileLooking(t *testing.T) {
	const n = 2000
	type owner struct {
		reg    *netpoll.Reg
		closed atomic.Bool
	}
	owners := make([]*owner, n)
	var bad atomic.Int32
	for i := range owners {
		o := &owner{}
		reg, err := netpoll.Register(netpoll.Spec{FD: -1, Ready: func() bool {
			if o.closed.Load() {
				bad.Add(1)
			}
			return false
		}, Min: 50 * time.Microsecond, Max: 50 * time.Microsecond})
		if err != nil {
			t.Fatal(err)
		}
		o.reg = reg
		owners[i] = o
		reg.Arm(true)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < n; i += 8 {
				o := owners[i]
				o.reg.Disarm()
				o.reg.Close()
				o.closed.Store(true)
			}
		})
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("Ready was called %d times after Close", bad.Load())
	}
	if netpoll.Running() {
		t.Fatal("the loop still runs after the last Close")
	}
}

// TestBackoffSpec: an owner that looks itself is woken at every look, and
// the period doubles up to Max at each one until an Arm with reset.
func TestBackoffSpec(t *testing.T) {
	reg := register(t, netpoll.Spec{FD: -1, Min: time.Millisecond, Max: 4 * time.Millisecond, Backoff: true})
	ctx := bounded(t)
	for i, want := range []time.Duration{2, 4, 4} {
		if err := reg.Wait(ctx, nil, i == 0); err != nil {
			t.Fatalf("wait %d: %v", i, err)
		}
		if got := netpoll.Period(reg); got != want*time.Millisecond {
			t.Fatalf("period after look %d: got %v, want %v", i, got, want*time.Millisecond)
		}
	}
	if err := reg.Wait(ctx, nil, true); err != nil {
		t.Fatal(err)
	}
	if got, want := netpoll.Period(reg), 2*time.Millisecond; got != want {
		t.Fatalf("period after a look that followed a reset: got %v, want %v", got, want)
	}
}

// TestEventsDuringLongLook: an event that arrives while the loop calls
// thousands of Readys (a sweep of queue peeks) wakes its owner before the
// sweep ends. The first Ready of a look writes to a pipe another owner
// waits on; every Ready more than DispatchEvery calls later holds the
// sweep until that owner is woken. A loop that dispatches events only
// between looks never wakes it: the held Readys wait out the test's bound.
func TestEventsDuringLongLook(t *testing.T) {
	pr, pw := pipe(t)
	ev := register(t, netpoll.Spec{FD: int(pr.Fd()), Events: unix.EPOLLIN})
	ev.Arm(true)
	woken := make(chan struct{})
	parked := make(chan error, 1)
	go func() {
		err := ev.Park(bounded(t), nil)
		if err == nil {
			close(woken)
		}
		parked <- err
	}()
	var calls atomic.Int64
	var held atomic.Bool // a Ready waited out the bound: no dispatch during the look
	gaveUp := make(chan struct{})
	ready := func() bool {
		switch k := calls.Add(1); {
		case k == 1:
			if _, err := pw.Write([]byte{1}); err != nil {
				t.Error(err)
			}
		case k > netpoll.DispatchEvery+1:
			select {
			case <-woken:
			case <-gaveUp:
			case <-time.After(failAfter / 2): // before Park's bound: the failure says why
				if !held.Swap(true) {
					close(gaveUp) // the other held Readys need not wait too
				}
			}
		}
		return false
	}
	// One period for all: their looks fall in the same sweep (unless a
	// period's boundary splits their arming, and then the second part's
	// look comes after a dispatch: the test passes either way).
	const period = 200 * time.Millisecond
	for range 3 * netpoll.DispatchEvery {
		register(t, netpoll.Spec{FD: -1, Ready: ready, Min: period, Max: period}).Arm(true)
	}
	err := <-parked
	// Without a dispatch during the look, the owner is woken only after
	// the look, which ends once a held Ready gave up: held is set by then.
	if held.Load() {
		t.Fatal("an event that arrived during a look woke its owner only after the look")
	}
	if err != nil {
		t.Fatalf("the pipe's owner: %v", err)
	}
}
