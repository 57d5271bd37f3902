package pump

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/producer"
	"github.com/bpfchan/bpfchan/internal/testenv"
)

// watchedFeed tells a test when a held drain first finds itself pending,
// and counts the pump's waits.
type watchedFeed struct {
	feed
	once  sync.Once
	pend  chan struct{}
	waits atomic.Int64
}

func (w *watchedFeed) wait(ctx context.Context) error {
	w.waits.Add(1)
	return w.feed.wait(ctx)
}

func (w *watchedFeed) pending() bool {
	p := w.feed.pending()
	if p {
		w.once.Do(func() { close(w.pend) })
	}
	return p
}

// heldRing is a RingBuf[uint64] pump on a fresh ring whose feed is watched,
// with a gate and a plain producer writing into the ring.
type heldRing struct {
	s    *Source[uint64]
	w    *watchedFeed
	gate *producer.Gate
	prod *producer.Producer
	got  chan []uint64 // everything received, once C() closed
}

func newHeldRing(t *testing.T, ctx context.Context) *heldRing {
	t.Helper()
	testenv.RequireKernelFaults(t)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 4096})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	h := &heldRing{got: make(chan []uint64, 1)}
	if h.gate, err = producer.NewRingGate(m, 0xfeed); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.gate.Close() })
	if h.prod, err = producer.NewRing(m, 8); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.prod.Close() })
	c, f, dec, err := openRing[uint64](ctx, "held ring pump", m, ringOpts, []Option{WithDrainInterval(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	h.w = &watchedFeed{feed: f, pend: make(chan struct{})}
	h.s = &Source[uint64]{}
	start(ctx, c, h.w, dec, newSingle(c, h.s), h.s)
	go func() {
		var got []uint64
		for v := range h.s.C() {
			got = append(got, v)
		}
		h.got <- got
	}()
	// A committed record, then the gate's reserved one, then one committed
	// behind it: all three are in the ring when Close comes.
	if err := h.prod.Run(1); err != nil {
		t.Fatal(err)
	}
	if err := h.gate.Start(); err != nil {
		t.Fatal(err)
	}
	if err := h.gate.AwaitWaiting(); err != nil {
		t.Fatal(err)
	}
	if err := h.prod.Run(1); err != nil {
		t.Fatal(err)
	}
	return h
}

// closeWhilePending calls Close and returns once the pump is waiting for
// the reserved record, failing if the pump stops first.
func (h *heldRing) closeWhilePending(t *testing.T) <-chan error {
	t.Helper()
	closed := make(chan error, 1)
	go func() { closed <- h.s.Close() }()
	select {
	case <-h.w.pend:
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a record written before it was still reserved", err)
	}
	return closed
}

// A graceful Close waits for a record that was reserved when the pump saw
// Close, and delivers it and the records committed behind it.
func TestRingCloseWaitsForReservedRecord(t *testing.T) {
	h := newHeldRing(t, t.Context())
	closed := h.closeWhilePending(t)
	if err := h.gate.Open(); err != nil {
		t.Fatal(err)
	}
	if err := h.gate.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got, want := <-h.got, []uint64{0, 0xfeed, 1}; !slices.Equal(got, want) {
		t.Fatalf("received %#x, want %#x", got, want)
	}
	if st := h.s.Stats(); st.Received != 3 || st.Delivered != 3 {
		t.Fatalf("Stats %+v, want 3 received and delivered", st)
	}
}

// Cancelling ctx stops a pump that waits for a reserved record at once.
func TestRingCancelWhileReservedRecordPending(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	h := newHeldRing(t, ctx)
	closed := h.closeWhilePending(t)
	cancel()
	if err := <-closed; !errors.Is(err, context.Canceled) {
		t.Fatalf("Close after cancel: %v, want context.Canceled", err)
	}
	if err := h.gate.Open(); err != nil {
		t.Fatal(err)
	}
	if err := h.gate.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := <-h.got; !slices.Equal(got, []uint64{0}) {
		t.Fatalf("received %#x, want only the record before the reserved one", got)
	}
}

// A reserved record does not keep a running pump busy: it parks once and
// stays parked (no drain for an hour) while the record stays reserved,
// however long the test keeps busy itself. A pump that took the reserved
// record for a ready one would go round its loop thousands of times here.
func TestRingReservedRecordParksPump(t *testing.T) {
	h := newHeldRing(t, t.Context())
	before := h.w.waits.Load()
	for range 2000 {
		if ok, err := h.gate.Waiting(); !ok || err != nil {
			t.Fatalf("gate Waiting = %v, %v", ok, err)
		}
	}
	if n := h.w.waits.Load() - before; n > 2 {
		t.Fatalf("the pump went round %d times while a record stayed reserved", n)
	}
	if err := h.gate.Open(); err != nil {
		t.Fatal(err)
	}
	if err := h.gate.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := h.s.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := <-h.got, []uint64{0, 0xfeed, 1}; !slices.Equal(got, want) {
		t.Fatalf("received %#x, want %#x", got, want)
	}
}
