package main

import (
	"testing"
)

// delivery is one record as the Consumer delivers it.
type delivery struct {
	node, ring string
	pos        uint64 // the message's (first) record's position
	index      int    // the record's place in its message
	seq        uint64 // the message's stream sequence
	delivered  uint64 // its delivery count
	blocked    bool
}

// msg returns the deliveries of a message of n records from position
// first on (n = 1: a message per record).
func msg(node, ring string, first uint64, n int, seq, delivered uint64) []delivery {
	ds := make([]delivery, n)
	for i := range ds {
		ds[i] = delivery{node, ring, first * recordSize, i, seq, delivered, false}
	}
	return ds
}

func join(dss ...[]delivery) []delivery {
	var out []delivery
	for _, ds := range dss {
		out = append(out, ds...)
	}
	return out
}

// TestTally: the collector's account of what the Consumer delivers.
func TestTally(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []delivery
		want    streamFigures // node-1's
		foreign uint64
	}{
		{"packed, in order",
			join(msg("node-1", "r", 0, 3, 1, 1), msg("node-1", "r", 3, 2, 2, 1)),
			streamFigures{Records: 5, Rings: 1}, 0},
		{"a message per record",
			join(msg("node-1", "r", 0, 1, 1, 1), msg("node-1", "r", 1, 1, 2, 1)),
			streamFigures{Records: 2, Rings: 1}, 0},
		{"a message delivered again",
			join(msg("node-1", "r", 0, 3, 1, 1), msg("node-1", "r", 0, 3, 1, 2)),
			streamFigures{Records: 3, Redelivered: 3, Rings: 1}, 0},
		{"records in another message too: duplicates",
			join(msg("node-1", "r", 0, 3, 1, 1), msg("node-1", "r", 2, 2, 2, 1)),
			streamFigures{Records: 4, Duplicates: 1, Rings: 1}, 0},
		{"a duplicate message delivered again",
			join(msg("node-1", "r", 0, 2, 1, 1), msg("node-1", "r", 0, 2, 2, 1), msg("node-1", "r", 0, 2, 2, 2)),
			streamFigures{Records: 2, Duplicates: 2, Redelivered: 2, Rings: 1}, 0},
		{"first seen on a redelivery",
			msg("node-1", "r", 0, 2, 7, 3),
			streamFigures{Records: 2, Rings: 1}, 0},
		{"a gap",
			join(msg("node-1", "r", 0, 2, 1, 1), msg("node-1", "r", 4, 1, 2, 1)),
			streamFigures{Records: 3, Gaps: 2, Rings: 1}, 0},
		{"a gap filled late: out of order",
			join(msg("node-1", "r", 0, 1, 1, 1), msg("node-1", "r", 2, 1, 2, 1), msg("node-1", "r", 1, 1, 3, 1)),
			streamFigures{Records: 3, OutOfOrder: 1, Rings: 1}, 0},
		{"two rings",
			join(msg("node-1", "a", 0, 2, 1, 1), msg("node-1", "b", 0, 2, 2, 1)),
			streamFigures{Records: 4, Rings: 2}, 0},
		{"a position that is no record's",
			[]delivery{{"node-1", "r", recordSize + 8, 0, 1, 1, false}},
			streamFigures{Misaligned: 1, Rings: 1}, 0},
		{"blocked, counted once",
			[]delivery{{"node-1", "r", 0, 0, 1, 1, true}, {"node-1", "r", 0, 0, 1, 2, true}, {"node-1", "r", recordSize, 0, 2, 1, false}},
			streamFigures{Records: 2, Blocked: 1, Redelivered: 1, Rings: 1}, 0},
		{"other nodes and no ring: foreign",
			join(msg("node-9", "r", 0, 2, 1, 1), msg("node-1", "", 0, 1, 2, 1)),
			streamFigures{}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl := newTally([]string{"node-1", "node-2"})
			for _, d := range tc.in {
				v := event{}
				if d.blocked {
					v.Flags = eventBlocked
				}
				tl.add(d.node, d.ring, d.pos, d.index, d.seq, d.delivered, &v)
			}
			figs := tl.figures()
			if got := figs["node-1"]; got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if got := figs["node-2"]; got != (streamFigures{}) {
				t.Errorf("node-2: got %+v, want nothing", got)
			}
			if tl.foreign != tc.foreign {
				t.Errorf("got %d foreign records, want %d", tl.foreign, tc.foreign)
			}
		})
	}
}

// TestSummaryCheck: which figures reconcile.
func TestSummaryCheck(t *testing.T) {
	good := nodeSummary{Node: "node-1", Stopped: true,
		Kernel: kernelFigures{Events: 10, RingFull: 2, Blocked: 4, BlockedFull: 1},
		Stream: streamFigures{Records: 8, Blocked: 3, Rings: 1}}
	for _, tc := range []struct {
		name   string
		change func(n *nodeSummary)
		want   int // problems
	}{
		{"reconciled", func(n *nodeSummary) {}, 0},
		{"reordered and redelivered, nothing lost", func(n *nodeSummary) { n.Stream.OutOfOrder, n.Stream.Redelivered = 3, 2 }, 0},
		{"a record lost", func(n *nodeSummary) { n.Stream.Records-- }, 1},
		{"a blocked record lost", func(n *nodeSummary) { n.Stream.Blocked-- }, 1},
		{"a duplicate", func(n *nodeSummary) { n.Stream.Duplicates = 1 }, 1},
		{"a gap", func(n *nodeSummary) { n.Stream.Gaps = 1 }, 1},
		{"misaligned", func(n *nodeSummary) { n.Stream.Misaligned = 1 }, 1},
		{"two rings", func(n *nodeSummary) { n.Stream.Rings = 2 }, 1},
		{"not stopped cleanly", func(n *nodeSummary) { n.Stopped = false }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := good
			tc.change(&n)
			s := summary{Nodes: []nodeSummary{n}}
			s.check()
			if got := len(s.Nodes[0].Problems); got != tc.want || s.Reconciled != (tc.want == 0) {
				t.Errorf("got %d problems %q, reconciled %v; want %d", got, s.Nodes[0].Problems, s.Reconciled, tc.want)
			}
		})
	}
}
