package netpoll_test

import (
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bpfchan/bpfchan/internal/netpoll"
	"github.com/bpfchan/bpfchan/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func pipe(t *testing.T) (r, w *os.File) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func TestWaitReady(t *testing.T) {
	r, w := pipe(t)
	wt, err := netpoll.New(int(r.Fd()), "pipe")
	if err != nil {
		t.Fatal(err)
	}
	defer wt.Close()
	var written atomic.Bool
	done := make(chan error, 1)
	go func() {
		ok, err := wt.Wait(func() bool { return written.Load() }, 0)
		if !ok && err == nil {
			err = errors.New("not ready")
		}
		done <- err
	}()
	written.Store(true)
	w.Write([]byte{1})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestWaitTimeout(t *testing.T) {
	r, _ := pipe(t)
	wt, err := netpoll.New(int(r.Fd()), "pipe")
	if err != nil {
		t.Fatal(err)
	}
	defer wt.Close()
	ok, err := wt.Wait(func() bool { return false }, time.Millisecond)
	if ok || err != nil {
		t.Fatalf("got %v, %v; want false, nil", ok, err)
	}
}

func TestInterrupt(t *testing.T) {
	r, _ := pipe(t)
	wt, err := netpoll.New(int(r.Fd()), "pipe")
	if err != nil {
		t.Fatal(err)
	}
	defer wt.Close()
	done := make(chan error, 1)
	go func() {
		_, err := wt.Wait(func() bool { return false }, 0)
		done <- err
	}()
	wt.Interrupt()
	if err := <-done; !errors.Is(err, netpoll.ErrInterrupted) {
		t.Fatalf("got %v, want ErrInterrupted", err)
	}
	// Sticky: a later Wait returns at once too.
	if _, err := wt.Wait(func() bool { return false }, 0); !errors.Is(err, netpoll.ErrInterrupted) {
		t.Fatalf("after Interrupt: got %v, want ErrInterrupted", err)
	}
}

func TestNotPollable(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "regular")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if wt, err := netpoll.New(int(f.Fd()), "regular file"); err == nil {
		wt.Close()
		t.Fatal("a regular file was accepted")
	}
}
