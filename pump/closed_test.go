//go:build !race

// Closing an *ebpf.Map while another goroutine uses it is a data race inside
// cilium/ebpf (its descriptor field is not atomic), so the race detector
// rightly objects to this scenario; it is tested without -race.

package pump_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/maps"
	"github.com/bpfchan/bpfchan/pump"
)

// TestMapClosedUnderPump: the pump stops, C() closes, and Wait names the map.
func TestMapClosedUnderPump(t *testing.T) {
	t.Run("queue", func(t *testing.T) {
		m := newQueue(t, ebpf.Queue, 8, 4)
		src, err := pump.Queue[uint64](t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		m.Close()
		checkClosed(t, src)
	})
	t.Run("ring", func(t *testing.T) {
		m := newRing(t, 4096)
		src, err := pump.RingBuf[rec16](t.Context(), m, pump.WithDrainInterval(1e6))
		if err != nil {
			t.Fatal(err)
		}
		m.Close()
		checkClosed(t, src)
	})
	t.Run("perf", func(t *testing.T) {
		// cilium's perf reader keeps its own copy of the map: the pump
		// notices the closed map at its periodic drain.
		m := newPerfArray(t)
		src, err := pump.Perf[rec16](t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		m.Close()
		checkClosed(t, src)
	})
	for _, typ := range []ebpf.MapType{ebpf.Queue, ebpf.Stack} {
		t.Run("writer/"+typ.String(), func(t *testing.T) {
			m := newQueue(t, typ, 8, 4)
			s, err := pump.QueueWriter[uint64](t.Context(), m)
			if typ == ebpf.Stack {
				s, err = pump.StackWriter[uint64](t.Context(), m)
			}
			if err != nil {
				t.Fatal(err)
			}
			m.Close()
			select {
			case s.C() <- 1:
			case <-s.Done():
				t.Fatal("the writer stopped before its first push")
			}
			<-s.Done()
			err = s.Wait()
			if !errors.Is(err, maps.ErrClosed) || !strings.Contains(err.Error(), "test_") {
				t.Fatalf("Wait: %v, want maps.ErrClosed naming the map", err)
			}
			if st := s.Stats(); st.Received != 1 || st.Dropped != 1 {
				t.Fatalf("stats %+v, want the value received and dropped", st)
			}
		})
	}
}

func checkClosed[T any](t *testing.T, src *pump.Source[T]) {
	t.Helper()
	if _, ok := recv(t, src.C()); ok {
		t.Fatal("got a value from a closed map")
	}
	err := src.Wait()
	if !errors.Is(err, maps.ErrClosed) || !strings.Contains(err.Error(), "test_") {
		t.Fatalf("Wait: %v, want maps.ErrClosed naming the map", err)
	}
}
