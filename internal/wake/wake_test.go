package wake_test

import (
	"testing"

	"github.com/bpfchan/bpfchan/internal/testenv"
	"github.com/bpfchan/bpfchan/internal/wake"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func TestSignal(t *testing.T) {
	a := wake.Register(7, wake.Pushed)
	b := wake.Register(7, wake.Pushed) // the same map: the same signal
	other := wake.Register(7, wake.Popped)
	defer a.Release()
	defer other.Release()
	if a != b {
		t.Fatal("two registrations of one map and event got different signals")
	}
	b.Release()
	c := a.Armed()
	o := other.Armed()
	if closed(c) {
		t.Fatal("armed channel closed before Notify")
	}
	a.Notify()
	if !closed(c) {
		t.Fatal("Notify did not close the armed channel")
	}
	if closed(o) {
		t.Fatal("Notify of one event woke another")
	}
	if closed(a.Armed()) {
		t.Fatal("a fresh arm is already closed")
	}
	a.Notify()
	a.Notify() // nobody armed: nothing to do
}

func TestLen(t *testing.T) {
	before := wake.Len()
	a := wake.Register(8, wake.Pushed)
	b := wake.Register(8, wake.Pushed)
	if n := wake.Len(); n != before+1 {
		t.Fatalf("Len %d, want %d", n, before+1)
	}
	a.Release()
	b.Release()
	if n := wake.Len(); n != before {
		t.Fatalf("Len %d after every Release, want %d", n, before)
	}
}
