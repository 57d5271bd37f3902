package netpoll

import (
	"context"
	"testing"
	"time"
)

// TestReviewReadyWithoutLock: the loop calls every due registration's
// Ready with the package's one mutex held, so a Ready that makes a
// syscall (a queue poller's peek, about 1-3 µs) blocks, for the whole
// sweep, every Arm, Disarm and Wake of every other registration in the
// process: the wait bookkeeping of every busy ring pump, and every
// AckSource.Ack. With 5,000 idle queue pumps that is a 15 ms stall once per
// 100 ms sweep (BenchmarkReviewArmBesideQueueLooks). Ready should run
// outside the lock (Close then waits for a Ready in flight on its own
// registration only).
func TestReviewReadyWithoutLock(t *testing.T) {
	held := make(chan bool, 1)
	r, err := Register(Spec{FD: -1, Ready: func() bool {
		ok := mu.TryLock()
		if ok {
			mu.Unlock()
		}
		select {
		case held <- !ok:
		default:
		}
		return true
	}, Min: time.Millisecond, Max: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := r.Wait(ctx, nil, true); err != nil {
		t.Fatal(err)
	}
	if <-held {
		t.Fatal("Ready ran with the package mutex held: every other registration's Arm, Disarm and Wake waits for the sweep")
	}
}
