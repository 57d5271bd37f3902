package netpoll_test

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/bpfchan/bpfchan/internal/netpoll"
)

// TestNoMissedEdge: the writer writes one byte at a time, each only after
// the waiter has consumed the previous one, so the waiter usually parks
// before the byte arrives. Wait arms before it looks, so no byte is missed:
// every Wait without a timeout returns. A missed edge would park it for
// good; a watchdog turns that into a failure instead of a hang (a failure
// bound, not a timing assertion).
func TestNoMissedEdge(t *testing.T) {
	rounds := 20000
	if testing.Short() {
		rounds = 2000
	}
	r, w := pipe(t)
	wt, err := netpoll.New(int(r.Fd()), "pipe")
	if err != nil {
		t.Fatal(err)
	}
	defer wt.Close()
	fd := int(r.Fd()) // shares the dup's O_NONBLOCK: reads never block
	watchdog := time.AfterFunc(time.Minute, wt.Interrupt)
	defer watchdog.Stop()
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
	ready := func() bool {
		k, _ := syscall.Read(fd, b[:])
		got += max(k, 0)
		return k > 0
	}
	for i := range rounds {
		ok, err := wt.Wait(ready, 0)
		if errors.Is(err, netpoll.ErrInterrupted) {
			t.Fatalf("round %d: a written byte did not wake the waiter (missed edge)", i)
		}
		if !ok || err != nil {
			t.Fatalf("round %d: Wait = %v, %v", i, ok, err)
		}
		if i < rounds-1 {
			ack <- struct{}{}
		}
	}
	if got != rounds {
		t.Fatalf("read %d bytes, want %d", got, rounds)
	}
}
