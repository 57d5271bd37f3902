package pump_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/maps"
	"github.com/bpfchan/bpfchan/pump"
)

// sendUntilDone sends 0, 1, 2... on d.In() until the Duplex stops.
func sendUntilDone(t *testing.T, d *pump.Duplex[uint64]) {
	t.Helper()
	for i := uint64(0); ; i++ {
		select {
		case d.In() <- i:
		case <-d.Done():
			return
		}
	}
}

// TestDuplexOneSideFails: when one direction stops on an error, the other
// is stopped with it, Out() closes and Wait reports the error once. Before,
// the other direction kept running and Wait blocked.
func TestDuplexOneSideFails(t *testing.T) {
	t.Run("writer", func(t *testing.T) {
		// One entry, FullFail, nobody receiving: the poller holds at
		// most one value, so a push soon finds the queue full.
		m := newQueue(t, ebpf.Queue, 8, 1)
		ctx, cancel := context.WithCancel(t.Context())
		d, err := pump.QueueChannel[uint64](ctx, m, pump.WithFull(pump.FullFail))
		if err != nil {
			t.Fatal(err)
		}
		closeOnCleanup(t, cancel, d)
		sendUntilDone(t, d)
		for range d.Out() {
		}
		err = d.Wait()
		if !errors.Is(err, maps.ErrFull) || strings.Count(err.Error(), "full") != 1 {
			t.Fatalf("Wait: %v, want maps.ErrFull, once", err)
		}
		checkAccounts(t, d.InStats())
		checkAccounts(t, d.OutStats())
	})
	t.Run("decoder", func(t *testing.T) {
		m := newQueue(t, ebpf.Stack, 8, 4)
		ctx, cancel := context.WithCancel(t.Context())
		d, err := pump.StackChannel[uint64](ctx, m, pump.WithDecoder(func([]byte) (uint64, error) { panic("test panic") }))
		if err != nil {
			t.Fatal(err)
		}
		closeOnCleanup(t, cancel, d)
		sendUntilDone(t, d)
		if _, ok := recv(t, d.Out()); ok {
			t.Fatal("got a value from a failing decoder")
		}
		err = d.Wait()
		if !errors.Is(err, pump.ErrPanic) || strings.Count(err.Error(), "test panic") != 1 {
			t.Fatalf("Wait: %v, want ErrPanic, once", err)
		}
		checkAccounts(t, d.InStats())
		checkAccounts(t, d.OutStats())
	})
}

// TestDuplexCloseDelivers: values whose send on In() completed, still in
// its buffer at Close, are pushed and then delivered on Out().
func TestDuplexCloseDelivers(t *testing.T) {
	m := newQueue(t, ebpf.Queue, 8, 16)
	ctx, cancel := context.WithCancel(t.Context())
	d, err := pump.QueueChannel[uint64](ctx, m, pump.WithBuffer(8))
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, cancel, d)
	for i := range uint64(8) {
		d.In() <- i
	}
	closed := make(chan error, 1)
	go func() { closed <- d.Close() }()
	var got []uint64
	for v := range d.Out() {
		got = append(got, v)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if len(got) != 8 {
		t.Fatalf("got %v, want 0..7", got)
	}
	for i, v := range got {
		if v != uint64(i) {
			t.Fatalf("got %v, want 0..7 in order", got)
		}
	}
}

func checkAccounts(t *testing.T, st pump.Stats) {
	t.Helper()
	if st.Received != st.Delivered+st.Dropped+st.DecodeErrors {
		t.Fatalf("stats %+v do not account for every value", st)
	}
}
