package watch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// TestStatsFinalWhenCCloses: a consumer that ranges over C() and then reads
// Stats, without calling Wait, sees every observed change accounted for —
// Changes == Events + Coalesced + Discarded + DecodeErrors, nothing
// pending, Events exactly what it received — however the watcher stopped,
// while a writer keeps changing the map under a watcher that polls without
// pause. The rounds give the race detector and the scheduler many orderings
// of the last send, the stop and the close of C().
func TestStatsFinalWhenCCloses(t *testing.T) {
	const rounds = 100
	m := hash(t, 64)
	id := mapID(t, m)
	cause := errors.New("abort")
	for _, tc := range []struct {
		stop string
		want error // from Wait
	}{
		{"Close", nil},
		{"cancel", cause},
		{"poll failure", unix.EINVAL},
	} {
		t.Run(tc.stop, func(t *testing.T) {
			for round := range rounds {
				statsRound(t, round, tc.stop, tc.want, m, id, cause)
			}
		})
	}
}

// statsRound runs one watcher, Map or Changes by turns, under churn, and
// stops it in the given way after it has delivered three changes.
func statsRound(t *testing.T, round int, how string, want error, m *ebpf.Map, id ebpf.MapID, cause error) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	var (
		bg sync.WaitGroup
		w  interface {
			Wait() error
			Close() error
		}
	)
	stop := func() {
		switch how {
		case "Close":
			bg.Go(func() { w.Close() }) // returns once the consumer has taken the rest
		case "cancel":
			cancel(cause)
		case "poll failure":
			breakClone(t, id, m.FD())
		}
	}
	written := make(chan struct{})
	bg.Go(func() { churn(t, m, written) })
	defer bg.Wait()
	defer close(written)

	var (
		received uint64
		s        Stats
	)
	if round%2 == 0 {
		mw, err := Map[uint32, uint64](ctx, m, WithInterval(time.Nanosecond))
		must(t, err)
		w = mw
		received, s = consume(mw, stop)
	} else {
		cw, err := Changes[uint32, uint64](ctx, m, 1, WithInterval(time.Nanosecond))
		must(t, err)
		w = cw
		received, s = consume(cw, stop)
	}
	if s.Changes != s.Events+s.Coalesced+s.Discarded+s.DecodeErrors || s.Pending != 0 || s.Events != received {
		t.Fatalf("round %d: after C closed, stats %+v with %d received; want Changes == Events + Coalesced + Discarded + DecodeErrors, nothing pending, Events == received",
			round, s, received)
	}
	err := w.Wait()
	if !errors.Is(err, want) || (want == nil) != (err == nil) {
		t.Fatalf("round %d: Wait: got %v, want %v", round, err, want)
	}
	name := fmt.Sprintf(`Hash map "watched" (id %d)`, id)
	if how == "poll failure" && (!strings.Contains(err.Error(), name) || strings.Contains(err.Error(), "\n")) {
		t.Fatalf("round %d: Wait: %q does not name %s on one line", round, err, name)
	}
}

// consume ranges over w.C(), calls stop after the third value, and reads
// Stats as soon as C() is closed.
func consume[T any](w *Watcher[T], stop func()) (uint64, Stats) {
	var n uint64
	for range w.C() {
		if n++; n == 3 {
			stop()
		}
	}
	return n, w.Stats()
}

// churn rewrites eight keys of m with new values until done is closed.
func churn(t *testing.T, m *ebpf.Map, done <-chan struct{}) {
	for i := uint64(0); ; i++ {
		select {
		case <-done:
			return
		default:
		}
		if err := m.Put(uint32(i%8), i); err != nil {
			t.Error(err)
			return
		}
	}
}
