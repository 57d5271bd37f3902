package jetstream_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bpfchan/bpfchan/pump"

	bj "github.com/bpfchan/bpfchan/jetstream"
)

// previousRun is what a Forwarder that stopped before acknowledging the
// ring left in the stream, made by hand: the messages, in the order they
// were stored, each the records recs[from..to] (one record, or packed).
type previousRun struct {
	acked  int      // records the ring had acknowledged (recs[:acked])
	msgs   [][2]int // [from, to] indexes into the records, inclusive
	packed bool     // packed messages
	other  bool     // then a message of another node on the subject
}

// publishPrevious reads n records from a fresh source on the ring, publishes
// prev's messages exactly as a Forwarder of node would, acknowledges
// prev.acked records to the ring and closes the source.
func publishPrevious(t *testing.T, j jetstream.JetStream, src *pump.AckSource[rec16], n int, subject, node string, prev previousRun) {
	t.Helper()
	var recs []pump.Record[rec16]
	for len(recs) < n {
		recs = append(recs, <-src.C()...)
	}
	ring := src.RingID()
	for _, r := range prev.msgs {
		m := nats.NewMsg(subject)
		first := strconv.FormatUint(recs[r[0]].Pos, 10)
		m.Header.Set(bj.HeaderNode, node)
		m.Header.Set(bj.HeaderRing, ring)
		m.Header.Set(bj.HeaderPos, first)
		id := node + "/" + ring + "/" + first
		if prev.packed {
			last := strconv.FormatUint(recs[r[1]].Pos, 10)
			m.Header.Set(bj.HeaderCount, strconv.Itoa(r[1]-r[0]+1))
			m.Header.Set(bj.HeaderLast, last)
			id += "-" + last
			for _, rec := range recs[r[0] : r[1]+1] {
				m.Data = append(m.Data, packed(encode16(rec.Value))...)
			}
		} else {
			m.Data = encode16(recs[r[0]].Value)
		}
		m.Header.Set(jetstream.MsgIDHeader, id)
		if _, err := j.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	if prev.other {
		m := nats.NewMsg(subject)
		m.Header.Set(bj.HeaderNode, "other")
		m.Header.Set(bj.HeaderPos, "0")
		m.Header.Set(jetstream.MsgIDHeader, "other//0")
		m.Data = encode16(rec16{Seq: 1 << 40})
		if _, err := j.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	if prev.acked > 0 {
		if err := src.Ack(recs[prev.acked-1].Pos); err != nil {
			t.Fatal(err)
		}
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
}

// ones lists single-record messages for the records from..to, inclusive,
// but skip.
func ones(from, to int, skip ...int) [][2]int {
	var out [][2]int
	for i := from; i <= to; i++ {
		if !contains(skip, i) {
			out = append(out, [2]int{i, i})
		}
	}
	return out
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// resumeCases are previous runs a Forwarder resumes after, and what it
// must find in the stream.
var resumeCases = []struct {
	name    string
	prev    previousRun
	skipped uint64 // records found in the stream and not published again
}{
	{"in order", previousRun{msgs: ones(0, 29)}, 30},
	// A publish failed (lost in a disconnection) while later ones were
	// stored: skipping up to the last message would lose record 10.
	{"a gap", previousRun{msgs: ones(0, 29, 10)}, 29},
	// A failed publish retried after later ones: the subject's last
	// message is not the highest position.
	{"reordered", previousRun{msgs: append(ones(0, 29, 5), [2]int{5, 5})}, 30},
	{"ring partly acknowledged", previousRun{acked: 12, msgs: ones(0, 29, 20)}, 17},
	// Packed messages, with a gap, whose boundaries the next run does not
	// repeat (it packs by 7).
	{"packed", previousRun{msgs: [][2]int{{0, 9}, {10, 19}, {25, 29}}, packed: true}, 25},
}

// TestForwardResume: a Forwarder resuming on a ring whose previous
// forwarder published records and stopped before acknowledging them skips
// exactly what the stream holds: no record twice, none lost, whatever the
// gaps and order the previous run left. On a subject another node
// publishes to, it skips nothing and the message IDs keep the copies out
// (within the duplicate window).
func TestForwardResume(t *testing.T) {
	const n = 50
	cases := append(resumeCases[:len(resumeCases):len(resumeCases)], struct {
		name    string
		prev    previousRun
		skipped uint64
	}{"a shared subject", previousRun{msgs: ones(0, 29), other: true}, 0})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rb, p, j, st := fixture(t, 1<<16, 16)
			produce(t, p, n)
			publishPrevious(t, j, ackSource[rec16](t, rb), n, "fwd.n1", "n1", tc.prev)
			f := resume(t, j, st, rb, n, tc.prev.packed)
			got := checkStats(t, f)
			wantDups := uint64(0)
			if tc.prev.other {
				wantDups = 30
			}
			if got.Skipped != tc.skipped || got.Duplicates != wantDups || got.Received != uint64(n-tc.prev.acked) {
				t.Errorf("got stats %+v, want %d received, %d skipped, %d duplicates", got, n-tc.prev.acked, tc.skipped, wantDups)
			}
		})
	}
}

// resume forwards the ring as node n1 to fwd.n1, packing by 7 when packed,
// and checks that the stream then holds the n records of the ring once.
func resume(t *testing.T, j jetstream.JetStream, st jetstream.Stream, rb *ebpf.Map, n int, packed bool) *bj.Forwarder {
	t.Helper()
	src := ackSource[rec16](t, rb, pump.WithBatch(7, 0))
	opts := []bj.Option{bj.WithNode("n1")}
	if packed {
		opts = append(opts, bj.WithPacked())
	}
	f := forward(t, t.Context(), src, j, "fwd.n1", opts...)
	if err := f.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var mine []storedRec
	for _, r := range streamRecordsOn(t, st, "fwd.n1") {
		if r.node == "n1" {
			mine = append(mine, r)
		}
	}
	checkOnce(t, mine, n, false)
	return f
}

// TestForwardResumeAfterWindow: the same cases once the stream's duplicate
// window has passed, when message IDs no longer keep a record out twice:
// what the Forwarder reads from the stream is all that does.
func TestForwardResumeAfterWindow(t *testing.T) {
	const n, window = 50, 200 * time.Millisecond
	for _, tc := range resumeCases {
		t.Run(tc.name, func(t *testing.T) {
			rb, p, j, st := fixture(t, 1<<16, 16, func(c *jetstream.StreamConfig) { c.Duplicates = window })
			produce(t, p, n)
			publishPrevious(t, j, ackSource[rec16](t, rb), n, "fwd.n1", "n1", tc.prev)
			waitWindow(t, j, window)
			f := resume(t, j, st, rb, n, tc.prev.packed)
			if got := checkStats(t, f); got.Skipped != tc.skipped || got.Duplicates != 0 {
				t.Errorf("got stats %+v, want %d skipped, no duplicate", got, tc.skipped)
			}
		})
	}
}

// waitWindow waits until the duplicate window of the stream has passed
// for every message published so far: a probe published after them with
// one message ID is no longer a duplicate. It polls, every window/2, at
// most 50 times: the one time-based wait of these tests.
func waitWindow(t *testing.T, j jetstream.JetStream, window time.Duration) {
	t.Helper()
	probe := func() bool {
		m := nats.NewMsg("fwd.probe")
		m.Header.Set(jetstream.MsgIDHeader, "probe")
		a, err := j.PublishMsg(t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		return a.Duplicate
	}
	probe()
	tick := time.NewTicker(window / 2)
	defer tick.Stop()
	for range 50 {
		<-tick.C
		if !probe() {
			return
		}
	}
	t.Fatalf("the duplicate window of %v did not pass in 50 polls", window)
}
