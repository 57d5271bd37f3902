package pump_test

import (
	"errors"
	"testing"

	"github.com/bpfchan/bpfchan/maps"
	"github.com/bpfchan/bpfchan/pump"
)

// TestReviewAckedOwnsItsMap: rule 1 for the constructors the existing
// tests leave out. RingBufAcked and PerfSamples refuse a closed map with
// maps.ErrClosed; an AckSource whose caller closed the map, its descriptor
// number reused by another ring, goes on reading, acknowledging and
// publishing on the original ring.
func TestReviewAckedOwnsItsMap(t *testing.T) {
	ring, perf := newRing(t, 4096), newPerfArray(t)
	ring.Close()
	perf.Close()
	for name, open := range map[string]func() error{
		"RingBufAcked": func() error { _, err := pump.RingBufAcked[rec16](t.Context(), ring); return err },
		"PerfSamples":  func() error { _, err := pump.PerfSamples[rec16](t.Context(), perf); return err },
	} {
		if err := open(); !errors.Is(err, maps.ErrClosed) {
			t.Errorf("%s on a closed map: %v, want maps.ErrClosed", name, err)
		}
	}

	m := newRing(t, 4096)
	keep, err := m.Clone()
	if err != nil {
		t.Fatal(err)
	}
	defer keep.Close()
	p := ringProducer(t, m, 16)
	s := acked[rec16](t, t.Context(), m)
	reuseFD(t, m)
	run(t, p, 3)
	recs := recvRecords(t, s, 3)
	if err := s.Ack(recs[1].Pos); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	again := acked[rec16](t, t.Context(), keep)
	if r := recvRecords(t, again, 1); r[0] != recs[2] {
		t.Fatalf("redelivered %+v, want %+v: the Ack went to the original ring", r[0], recs[2])
	}
}
