package pump_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/maps"
	"github.com/bpfchan/bpfchan/pump"
)

// reuseFD closes m and makes a map of the same kind that takes its
// descriptor number, as a process that goes on working would: a handle
// still using the caller's number would now use the impostor.
func reuseFD(t *testing.T, m *ebpf.Map) (impostor *ebpf.Map) {
	t.Helper()
	fd := m.FD()
	spec := &ebpf.MapSpec{Name: "impostor", Type: m.Type(), KeySize: m.KeySize(), ValueSize: m.ValueSize(), MaxEntries: m.MaxEntries()}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	impostor = newMap(t, spec)
	if impostor.FD() != fd {
		t.Fatalf("the impostor got fd %d, want the closed map's %d", impostor.FD(), fd)
	}
	return impostor
}

// TestHandlesOwnTheirMap: every handle holds its own clone of the caller's
// map (DESIGN rule 1). Closing the caller's map, and reusing its
// descriptor number for another map, neither stops a handle nor sends it
// to the other map.
func TestHandlesOwnTheirMap(t *testing.T) {
	t.Run("queue source", func(t *testing.T) {
		m := newQueue(t, ebpf.Queue, 8, 8)
		keep, err := m.Clone() // the test's own way to the original map
		if err != nil {
			t.Fatal(err)
		}
		defer keep.Close()
		src, err := pump.Queue[uint64](t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		impostor := reuseFD(t, m)
		if err := impostor.Update(nil, uint64(666), ebpf.UpdateAny); err != nil {
			t.Fatal(err)
		}
		for _, v := range []uint64{1, 2, 3} {
			if err := keep.Update(nil, v, ebpf.UpdateAny); err != nil {
				t.Fatal(err)
			}
		}
		for _, want := range []uint64{1, 2, 3} {
			if got, _ := recv(t, src.C()); got != want {
				t.Fatalf("got %d, want %d (666 is the impostor's)", got, want)
			}
		}
		if err := src.Close(); err != nil {
			t.Fatal(err)
		}
		if got := popAll(t, impostor); !slices.Equal(got, []uint64{666}) {
			t.Fatalf("the impostor holds %v, want [666]", got)
		}
	})
	t.Run("ring source", func(t *testing.T) {
		m := newRing(t, 4096)
		p := ringProducer(t, m, 16) // its program holds the original ring
		src, err := pump.RingBuf[rec16](t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		reuseFD(t, m)
		run(t, p, 3)
		for want := range uint64(3) {
			if got, _ := recv(t, src.C()); got.Seq != want {
				t.Fatalf("got seq %d, want %d", got.Seq, want)
			}
		}
		if err := src.Close(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("perf source", func(t *testing.T) {
		m := newPerfArray(t)
		p := perfProducer(t, m, 16)
		src, err := pump.Perf[rec16](t.Context(), m, pump.WithBuffer(4))
		if err != nil {
			t.Fatal(err)
		}
		m.Close()
		run(t, p, 3)
		for range 3 {
			recv(t, src.C())
		}
		if err := src.Close(); err != nil {
			t.Fatal(err)
		}
	})
	for _, typ := range []ebpf.MapType{ebpf.Queue, ebpf.Stack} {
		t.Run("writer/"+typ.String(), func(t *testing.T) {
			m := newQueue(t, typ, 8, 8)
			keep, err := m.Clone()
			if err != nil {
				t.Fatal(err)
			}
			defer keep.Close()
			open := pump.QueueWriter[uint64]
			if typ == ebpf.Stack {
				open = pump.StackWriter[uint64]
			}
			w, err := open(t.Context(), m)
			if err != nil {
				t.Fatal(err)
			}
			impostor := reuseFD(t, m)
			w.C() <- 7
			close(w.C())
			if err := w.Wait(); err != nil {
				t.Fatal(err)
			}
			if got := popAll(t, keep); !slices.Equal(got, []uint64{7}) {
				t.Fatalf("the original holds %v, want [7]", got)
			}
			if got := popAll(t, impostor); len(got) != 0 {
				t.Fatalf("the impostor holds %v, want nothing", got)
			}
		})
	}
	t.Run("duplex", func(t *testing.T) {
		m := newQueue(t, ebpf.Queue, 8, 8)
		d, err := pump.QueueChannel[uint64](t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		impostor := reuseFD(t, m)
		d.In() <- 5
		if got, _ := recv(t, d.Out()); got != 5 {
			t.Fatalf("got %d, want 5", got)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if got := popAll(t, impostor); len(got) != 0 {
			t.Fatalf("the impostor holds %v, want nothing", got)
		}
	})
}

// TestClosedMapAtConstruction: a map the caller already closed is refused
// by every constructor with maps.ErrClosed, and nothing starts (TestMain
// checks goroutines and descriptors).
func TestClosedMapAtConstruction(t *testing.T) {
	ring, queue, perf := newRing(t, 4096), newQueue(t, ebpf.Queue, 8, 4), newPerfArray(t)
	ring.Close()
	queue.Close()
	perf.Close()
	ctx := t.Context()
	for name, open := range map[string]func() error{
		"RingBuf":        func() error { _, err := pump.RingBuf[rec16](ctx, ring); return err },
		"RingBufBatches": func() error { _, err := pump.RingBufBatches[rec16](ctx, ring); return err },
		"Perf":           func() error { _, err := pump.Perf[rec16](ctx, perf); return err },
		"Queue":          func() error { _, err := pump.Queue[uint64](ctx, queue); return err },
		"QueueWriter":    func() error { _, err := pump.QueueWriter[uint64](ctx, queue); return err },
		"QueueChannel":   func() error { _, err := pump.QueueChannel[uint64](ctx, queue); return err },
	} {
		if err := open(); !errors.Is(err, maps.ErrClosed) {
			t.Errorf("%s on a closed map: %v, want maps.ErrClosed", name, err)
		}
	}
}
