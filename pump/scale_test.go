package pump_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/netpoll"
	"github.com/bpfchan/bpfchan/pump"
)

// TestManyPumpsStopWhileSweeping: thousands of ring and queue pumps whose
// periodic looks come every millisecond, so the shared waiting goroutine
// is always sweeping; half are closed at once from many goroutines, the
// rest stopped by one cancel. Every pump stops, the waiting goroutine
// stops with the last one, and nothing leaks (TestMain checks goroutines
// and descriptors; -race checks the unregistering against the sweep).
func TestManyPumpsStopWhileSweeping(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 300
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type stopper interface {
		Close() error
		Wait() error
	}
	var pumps []stopper
	for i := range n {
		var (
			s   stopper
			err error
		)
		if i%2 == 0 {
			m := newRing(t, 4096)
			s, err = pump.RingBuf[rec16](ctx, m, pump.WithDrainInterval(time.Millisecond))
			m.Close()
		} else {
			m := newQueue(t, ebpf.Queue, 8, 4)
			s, err = pump.Queue[uint64](ctx, m, pump.WithPoll(time.Millisecond, time.Millisecond))
			m.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		pumps = append(pumps, s)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < n/2; i += 8 {
				// Close races the cancel below: either way is a clean stop.
				if err := pumps[i].Close(); err != nil && err != context.Canceled {
					t.Error(err)
				}
			}
		})
	}
	cancel()
	wg.Wait()
	for _, s := range pumps[n/2:] {
		if err := s.Wait(); err != nil && err != context.Canceled {
			t.Error(err)
		}
	}
	if netpoll.Running() {
		t.Fatal("the waiting goroutine runs on after every pump stopped")
	}
}

// TestCallersFileDescriptionUntouched: a ring pump's clone shares the
// caller's file description (dup), so a flag set on it would be the
// caller's too; the pump sets none (DESIGN rule 8). The flags are the same
// before, during and after a pump.
func TestCallersFileDescriptionUntouched(t *testing.T) {
	rb := newRing(t, 4096)
	flags := func() int {
		f, err := unix.FcntlInt(uintptr(rb.FD()), unix.F_GETFL, 0)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	before := flags()
	src, err := pump.RingBuf[rec16](t.Context(), rb)
	if err != nil {
		t.Fatal(err)
	}
	run(t, ringProducer(t, rb, 16), 1)
	recv(t, src.C())
	waitParked(t)
	during := flags()
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if after := flags(); during != before || after != before {
		t.Fatalf("the caller's file status flags: %#x before, %#x during, %#x after the pump", before, during, after)
	}
}
