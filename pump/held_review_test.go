package pump

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/testenv"
)

// busyOnceFeed answers the first pop of a held drain the way the kernel
// answers a pop whose map lock gave up (EBUSY, Linux 6.15's resilient
// spinlock: a holder on a descheduled vCPU, a suspected deadlock), with
// exactly popFeed.next's bookkeeping for that answer. The kernel gives
// EBUSY only under contention a test cannot arrange, so this one answer
// is injected; everything else is the real queue map.
type busyOnceFeed struct {
	*popFeed
	injected bool
}

func (b *busyOnceFeed) next() ([]byte, bool, error) {
	if b.held && !b.injected {
		b.injected = true
		if b.armed == nil {
			b.armed = b.pushed.Armed()
		}
		b.n.n.Polls++
		b.busy = true
		b.n.n.EmptyPolls++
		return nil, false, nil
	}
	return b.popFeed.next()
}

// TestReviewHeldQueueBusyEmpty: a graceful Close of a queue pump whose pop
// is refused with EBUSY while the queue is (or becomes: another pump popped
// the last value) empty. pending() says "look again", and the pump now waits
// in netpoll for a look whose Ready is a peek: the queue is empty, so the
// peek never reports ready, nothing else wakes the pump, and Close never
// returns (until the constructor's ctx is cancelled). Before the rework a
// held drain that was pending retried after a pause.
func TestReviewHeldQueueBusyEmpty(t *testing.T) {
	testenv.RequireBPF(t)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "review_q", Type: ebpf.Queue, ValueSize: 8, MaxEntries: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const what = "queue pump"
	c, err := newConfig(what, pollOpts, []Option{WithPoll(time.Millisecond, 4*time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	mi, err := claim(ctx, what, m, ebpf.Queue)
	if err != nil {
		t.Fatal(err)
	}
	s, f, dec, err := newPopSource[uint64](what, mi, c)
	if err != nil {
		mi.m.Close()
		t.Fatal(err)
	}
	start(ctx, c, &busyOnceFeed{popFeed: f}, dec, newSingle(c, s), s)
	// Idle first: the pump has consumed any wake-up and parks, so Close's
	// interrupt is the only one it gets.
	awaitParked(t)

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		cancel()
		<-closed
		t.Fatalf("Close of an empty queue pump whose held pop got EBUSY did not return within 5s (the poll max is 4 ms): the pending drain waits for a peek that never reports ready")
	}
	if st := s.Stats(); st.Received != st.Delivered+st.Dropped+st.DecodeErrors {
		t.Fatalf("stats %+v: identity broken", st)
	}
}

// awaitParked returns once some goroutine waits in netpoll's Park (this
// test's pump: the tests of this package run one at a time).
func awaitParked(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "[select") && strings.Contains(g, "netpoll.(*Reg).Park") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no pump parked after 30s")
		}
		runtime.Gosched()
	}
}
