package jetstream

import (
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"

	"github.com/bpfchan/bpfchan/jetstream/internal/natstest"
)

// TestStoredRecordsLongHistory: on a subject with a long history (a
// previous ring of the node, then thousands of this ring's messages, other
// subjects in between), the read at the start begins within resumeSpan of
// the ring's acknowledged position and finds exactly what the stream holds
// beyond it: a gap, and a message stored out of order.
func TestStoredRecordsLongHistory(t *testing.T) {
	const (
		n      = 3000
		size   = 4096 // bytes of ring per record
		ackAt  = 2990 // the ring is acknowledged up to record ackAt
		gap    = 2995 // never stored
		late   = 2992 // stored after all the others
		ring   = "boot:7"
		subj   = "r.n1"
		origin = 1000
	)
	s := natstest.Start(t)
	_, j := natstest.Connect(t, s)
	if _, err := j.CreateStream(t.Context(), ForwardStream("R", "r.>")); err != nil {
		t.Fatal(err)
	}
	pos := func(i int) uint64 { return origin + uint64(i)*size }
	seqs := make(map[int]uint64)
	pub := func(ringID string, i int) {
		m := nats.NewMsg(subj)
		m.Header.Set(HeaderNode, "n1")
		m.Header.Set(HeaderRing, ringID)
		m.Header.Set(HeaderPos, strconv.FormatUint(pos(i), 10))
		a, err := j.PublishMsg(t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		if ringID == ring {
			seqs[i] = a.Sequence
		}
		if i%3 == 0 {
			if _, err := j.Publish(t.Context(), "r.other", nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 200 {
		pub("boot:3", i) // a previous ring of the node
	}
	for i := range n {
		if i != gap && i != late {
			pub(ring, i)
		}
	}
	pub(ring, late)

	st, err := j.Stream(t.Context(), "R")
	if err != nil {
		t.Fatal(err)
	}
	acked := pos(ackAt)
	c := classifier{node: "n1", ring: ring, acked: acked}
	start, shared, err := tailStart(t.Context(), st, subj, c, st.CachedInfo().State.FirstSeq, seqs[late])
	if err != nil || shared {
		t.Fatalf("tailStart: %v, shared %v", err, shared)
	}
	// The first message that may hold a record at or after acked is the
	// first within resumeSpan below it.
	firstNeeded := ackAt - resumeSpan/size
	if start > seqs[firstNeeded] || start < seqs[firstNeeded-10] {
		t.Errorf("got the read starting at sequence %d, want between %d and %d (records %d and %d)", start, seqs[firstNeeded-10], seqs[firstNeeded], firstNeeded-10, firstNeeded)
	}

	got, err := storedRecords(t.Context(), st, subj, "n1", ring, acked)
	if err != nil {
		t.Fatal(err)
	}
	for i := ackAt; i < n; i++ {
		if want := i != gap; got.covers(pos(i)) != want {
			t.Errorf("record %d: got covered %v, want %v", i, !want, want)
		}
	}

	for _, tc := range []struct {
		name, node, ring string
	}{
		{"another node", "n2", ring},
		{"another ring", "n1", "boot:9"},
	} {
		got, err := storedRecords(t.Context(), st, subj, tc.node, tc.ring, acked)
		if err != nil || len(got.iv) != 0 {
			t.Errorf("%s: got %v (%v), want nothing to skip", tc.name, got.iv, err)
		}
	}
	if infos := consumers(t, st); infos != 0 {
		t.Errorf("got %d consumers left on the stream, want the read's deleted", infos)
	}
}

func consumers(t *testing.T, st js.Stream) int {
	t.Helper()
	n := 0
	l := st.ListConsumers(t.Context())
	for range l.Info() {
		n++
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStoredCovers: covers answers increasing positions against sorted,
// merged intervals.
func TestStoredCovers(t *testing.T) {
	s := stored{iv: merge([]interval{{50, 60}, {10, 20}, {15, 30}, {70, 70}})}
	if want := []interval{{10, 30}, {50, 60}, {70, 70}}; len(s.iv) != len(want) || s.iv[0] != want[0] || s.iv[1] != want[1] || s.iv[2] != want[2] {
		t.Fatalf("got intervals %v, want %v", s.iv, want)
	}
	for _, tc := range []struct {
		pos  uint64
		want bool
	}{{5, false}, {10, true}, {30, true}, {40, false}, {55, true}, {70, true}, {80, false}} {
		if got := s.covers(tc.pos); got != tc.want {
			t.Errorf("covers(%d): got %v, want %v", tc.pos, got, tc.want)
		}
	}
}
