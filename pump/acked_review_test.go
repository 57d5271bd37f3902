package pump_test

import (
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/producer"
	"github.com/bpfchan/bpfchan/pump"
)

// reviewBound bounds a wait that the code under review may never end; it
// is a failure bound, not a timing assertion (with ackedNoLook the pump
// never looks by itself, so only a wake-up can deliver in time).
const reviewBound = 5 * time.Second

// recvWithin receives one batch, or reports that none came within
// reviewBound.
func recvWithin[T any](s *pump.AckSource[T]) ([]pump.Record[T], bool) {
	select {
	case b, ok := <-s.C():
		return b, ok
	case <-time.After(reviewBound):
		return nil, false
	}
}

// runAnnounced runs p once, writing a record at the ring's consumer
// position, and returns once the kernel's wake-up for it has been
// delivered (seen by an epoll instance of the test's own). The kernel
// sends that wake-up from an irq_work, which a VM may run late: without
// this, a late wake-up could reach a pump started afterwards and make it
// look when nothing else would.
func runAnnounced(t *testing.T, rb *ebpf.Map, p *producer.Producer) {
	t.Helper()
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ep)
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, rb.FD(), &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET}); err != nil {
		t.Fatal(err)
	}
	run(t, p, 1)
	ev := make([]unix.EpollEvent, 1)
	for {
		n, err := unix.EpollWait(ep, ev, int(failAfter/time.Millisecond))
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			t.Fatal(err)
		case n == 0:
			t.Fatalf("no wake-up for a record at the consumer position after %v", failAfter)
		}
		return
	}
}

// tailKinds are records an AckSource reads but never delivers: a
// discarded record, and one of the wrong size (a decode error).
var tailKinds = []struct {
	name string
	prod func(t *testing.T, rb *ebpf.Map) *producer.Producer
}{
	{"discarded", func(t *testing.T, rb *ebpf.Map) *producer.Producer {
		return ringProducer(t, rb, 16, producer.Discard())
	}},
	{"wrong size", func(t *testing.T, rb *ebpf.Map) *producer.Producer { return ringProducer(t, rb, 24) }},
}

// ackedTail makes a ring holding a good record (seq 0), then a record of
// the tail kind tk, and an AckSource on it (it never looks by itself) that
// has delivered the good one, acknowledged. It returns the source and the
// good records' producer.
func ackedTail(t *testing.T, tk int) (*pump.AckSource[rec16], *producer.Producer) {
	t.Helper()
	rb := newRing(t, 4096)
	good, tail := ringProducer(t, rb, 16), tailKinds[tk].prod(t, rb)
	runAnnounced(t, rb, good) // at the consumer position: its wake-up is spent here
	run(t, tail, 1)           // behind it: no wake-up
	s := ackedNoLook[rec16](t, t.Context(), rb)
	recs := recvRecords(t, s, 1)
	if err := s.Ack(recs[0].Pos); err != nil {
		t.Fatal(err)
	}
	return s, good
}

// TestReviewAckedTailReleased: the ring holds a good record, then one the
// source never delivers (discarded, or of the wrong size). The receiver
// acknowledges everything it got. DESIGN: such records are "released with
// the prefix around" them, and Positions' acked reaches produced once
// everything delivered is acknowledged (a forwarder waits for exactly
// that; metrics export produced-acked as the lag). Today the published
// consumer position stops at the start of the undelivered tail record.
func TestReviewAckedTailReleased(t *testing.T) {
	for i, tk := range tailKinds {
		t.Run(tk.name, func(t *testing.T) {
			s, _ := ackedTail(t, i)
			if a, p := s.Positions(); a != p {
				t.Errorf("after acknowledging every delivered record: acked %d, produced %d; want equal (the %s record after it is never released, lag stays %d bytes)", a, p, tk.name, p-a)
			}
		})
	}
}

// TestReviewAckedWakeAfterTail: the consequence for latency. The kernel
// wakes a reader only for a record committed at the published consumer
// position. With every delivered record acknowledged but the consumer
// position left before an undelivered tail record, the next record is
// committed elsewhere: no wake-up, and the pump (which never looks by itself here)
// never looks. With the default drain, every record that follows a
// discarded one at the tail waits up to 100 ms: a program that reserves,
// then decides to discard, hits it all the time.
func TestReviewAckedWakeAfterTail(t *testing.T) {
	for i, tk := range tailKinds {
		t.Run(tk.name, func(t *testing.T) {
			s, good := ackedTail(t, i)
			waitParked(t) // after the Ack's wake-up: the pump looked, found nothing, parked again
			run(t, good, 1)
			b, ok := recvWithin(s)
			if !ok {
				t.Fatalf("a record committed after a %s tail record, everything delivered acknowledged: not delivered within %v (no wake-up: the consumer position was left before the tail record)", tk.name, reviewBound)
			}
			if b[0].Value.Seq != 1 {
				t.Fatalf("got seq %d, want 1", b[0].Value.Seq)
			}
		})
	}
}

// TestReviewAckedOnlyTail: the same without any delivered record: a fresh
// source on a ring that holds only a discarded (or undecodable) record has
// nothing to acknowledge, so nothing ever moves the consumer position past
// it, and the first good record is not announced either.
func TestReviewAckedOnlyTail(t *testing.T) {
	for _, tk := range tailKinds {
		t.Run(tk.name, func(t *testing.T) {
			rb := newRing(t, 4096)
			good, tail := ringProducer(t, rb, 16), tk.prod(t, rb)
			runAnnounced(t, rb, tail)
			s := ackedNoLook[rec16](t, t.Context(), rb)
			waitParked(t)
			run(t, good, 1)
			if _, ok := recvWithin(s); !ok {
				t.Fatalf("the first record after a lone %s record: not delivered within %v (no wake-up)", tk.name, reviewBound)
			}
		})
	}
}

// TestReviewAckRefusesUndelivered: DESIGN: "a pos that is not the Pos of a
// delivered record is refused". The position of a discarded record, and of
// one that failed to decode, are record boundaries the receiver never saw;
// Ack accepts both today.
func TestReviewAckRefusesUndelivered(t *testing.T) {
	for _, tk := range tailKinds {
		t.Run(tk.name, func(t *testing.T) {
			rb := newRing(t, 4096)
			good, mid := ringProducer(t, rb, 16), tk.prod(t, rb)
			run(t, good, 1)
			run(t, mid, 1)
			run(t, good, 1)
			s := acked[rec16](t, t.Context(), rb)
			recs := recvRecords(t, s, 2)
			midPos := recs[0].Pos + 8 + 16 // header and payload of the first
			if midPos >= recs[1].Pos {
				t.Fatalf("positions %d, %d: no room for the middle record", recs[0].Pos, recs[1].Pos)
			}
			if err := s.Ack(midPos); err == nil {
				t.Errorf("Ack(%d), the position of a %s record never delivered: nil, want an error", midPos, tk.name)
			}
		})
	}
}
