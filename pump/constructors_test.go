package pump_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/maps"
	"github.com/bpfchan/bpfchan/pump"
)

// running is what every handle a constructor returns has.
type running interface {
	Close() error
	Wait() error
	Done() <-chan struct{}
}

// opener turns a constructor into one the table can call without options.
func opener[H running](f func(context.Context, *ebpf.Map, ...pump.Option) (H, error)) func(context.Context, *ebpf.Map) (running, error) {
	return func(ctx context.Context, m *ebpf.Map) (running, error) {
		h, err := f(ctx, m)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return h, nil
	}
}

// mapMaker makes a map of one kind for a test (closed at its end).
type mapMaker func(testing.TB) *ebpf.Map

var (
	ringMap     mapMaker = func(tb testing.TB) *ebpf.Map { return newRing(tb, 4096) }
	userRingMap mapMaker = func(tb testing.TB) *ebpf.Map { return newUserRing(tb, 4096) }
	perfMap     mapMaker = newPerfArray
	queueMap    mapMaker = func(tb testing.TB) *ebpf.Map { return newQueue(tb, ebpf.Queue, 8, 4) }
	stackMap    mapMaker = func(tb testing.TB) *ebpf.Map { return newQueue(tb, ebpf.Stack, 8, 4) }
	hashMap     mapMaker = func(tb testing.TB) *ebpf.Map {
		return newMap(tb, &ebpf.MapSpec{Name: "test_hash", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	}
)

// constructors is every exported constructor of the package, with the map
// kind it serves and a near kind it must refuse.
var constructors = []struct {
	name        string
	right, near mapMaker
	open        func(context.Context, *ebpf.Map) (running, error)
}{
	{"RingBuf", ringMap, userRingMap, opener(pump.RingBuf[rec16])},
	{"RingBufBatches", ringMap, userRingMap, opener(pump.RingBufBatches[rec16])},
	{"RingBufAcked", ringMap, userRingMap, opener(pump.RingBufAcked[rec16])},
	{"Perf", perfMap, ringMap, opener(pump.Perf[rec16])},
	{"PerfSamples", perfMap, ringMap, opener(pump.PerfSamples[rec16])},
	{"Queue", queueMap, stackMap, opener(pump.Queue[uint64])},
	{"Stack", stackMap, queueMap, opener(pump.Stack[uint64])},
	{"QueueWriter", queueMap, stackMap, opener(pump.QueueWriter[uint64])},
	{"StackWriter", stackMap, queueMap, opener(pump.StackWriter[uint64])},
	{"QueueChannel", queueMap, stackMap, opener(pump.QueueChannel[uint64])},
	{"StackChannel", stackMap, queueMap, opener(pump.StackChannel[uint64])},
	{"UserRingBuf", userRingMap, ringMap, opener(pump.UserRingBuf[uint64])},
}

// TestConstructors: for every constructor, a map of the wrong type is
// refused with maps.ErrMapType and a closed one with maps.ErrClosed
// (nothing starts: TestMain checks goroutines and descriptors); a running
// handle's Done is open, closed once Close returned, and a second handle's
// Done closes after its ctx is cancelled, Wait then reporting the cause.
func TestConstructors(t *testing.T) {
	stopped := errors.New("test stopped the handle")
	for _, tc := range constructors {
		t.Run(tc.name, func(t *testing.T) {
			for _, wrong := range []struct {
				kind string
				m    mapMaker
			}{{"near", tc.near}, {"hash", hashMap}} {
				m := wrong.m(t)
				if _, err := tc.open(t.Context(), m); !errors.Is(err, maps.ErrMapType) {
					t.Errorf("on a %v map (%s kind): %v, want maps.ErrMapType", m.Type(), wrong.kind, err)
				}
			}

			closed := tc.right(t)
			closed.Close()
			if _, err := tc.open(t.Context(), closed); !errors.Is(err, maps.ErrClosed) {
				t.Errorf("on a closed map: %v, want maps.ErrClosed", err)
			}

			m := tc.right(t)
			h, err := tc.open(t.Context(), m)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-h.Done():
				t.Fatalf("Done closed while running: Wait says %v", h.Wait())
			default:
			}
			if err := h.Close(); err != nil {
				t.Fatalf("Close: %v, want nil", err)
			}
			select {
			case <-h.Done():
			default:
				t.Fatal("Done not closed after Close returned")
			}

			// The first handle has stopped: a ring or perf array takes
			// another reader, a user ring another writer.
			ctx, cancel := context.WithCancelCause(t.Context())
			defer cancel(nil)
			h2, err := tc.open(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			cancel(stopped)
			select {
			case <-h2.Done():
			case <-time.After(failAfter):
				h2.Close()
				t.Fatalf("Done not closed %v after ctx was cancelled", failAfter)
			}
			if err := h2.Wait(); !errors.Is(err, stopped) {
				t.Errorf("Wait after a cancel: %v, want the cause %q", err, stopped)
			}
		})
	}
}
