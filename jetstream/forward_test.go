package jetstream_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bpfchan/bpfchan/maps"
	"github.com/bpfchan/bpfchan/pump"

	bj "github.com/bpfchan/bpfchan/jetstream"
	"github.com/bpfchan/bpfchan/jetstream/internal/natstest"
	"github.com/bpfchan/bpfchan/jetstream/internal/ringprod"
	"github.com/bpfchan/bpfchan/jetstream/internal/testenv"
)

// rec16 and rec64 are the ring records of the Forward tests: the
// producer's sequence number, then zeros.
type rec16 struct {
	Seq uint64
	_   uint64
}

type rec64 struct {
	Seq uint64
	_   [7]uint64
}

// newRing makes a ring buffer map of size bytes, closed when t ends.
func newRing(t testing.TB, size int) *ebpf.Map {
	t.Helper()
	testenv.RequireBPF(t)
	rb, err := maps.NewRingBuf(size, maps.WithName("fwd_ring"))
	if err != nil {
		t.Fatalf("create ring: %v", err)
	}
	t.Cleanup(func() { rb.Close() })
	return rb
}

// fixture is where most Forward tests start: a ring of ringSize bytes fed
// by a producer of recSize-byte records, and an in-process server with the
// stream "FWD" (forwardStream).
// Each function given changes the stream's configuration first.
func fixture(t testing.TB, ringSize, recSize int, with ...func(*jetstream.StreamConfig)) (*ebpf.Map, *ringprod.Producer, jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	rb := newRing(t, ringSize)
	p := newProducer(t, rb, recSize)
	s := natstest.Start(t)
	_, j := natstest.Connect(t, s)
	return rb, p, j, forwardStream(t, j, with...)
}

// newProducer loads a producer of size-byte records into rb.
func newProducer(t testing.TB, rb *ebpf.Map, size int) *ringprod.Producer {
	t.Helper()
	p, err := ringprod.New(rb, size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// produce runs p for n records and fails t if any was lost.
func produce(t testing.TB, p *ringprod.Producer, n int) {
	t.Helper()
	if err := p.Run(n); err != nil {
		t.Fatal(err)
	}
	if _, lost, err := p.Counts(); err != nil || lost != 0 {
		t.Fatalf("the producer lost %d records (%v): the ring is too small for the test", lost, err)
	}
}

// ackSource starts a durable source on rb; the test closes it when t ends
// (a Forwarder closes it before).
func ackSource[T any](t testing.TB, rb *ebpf.Map, opts ...pump.Option) *pump.AckSource[T] {
	t.Helper()
	src, err := pump.RingBufAcked[T](context.Background(), rb, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// forward starts a Forwarder, closed when t ends.
func forward[T any](t testing.TB, ctx context.Context, src *pump.AckSource[T], j jetstream.JetStream, subject string, opts ...bj.Option) *bj.Forwarder {
	t.Helper()
	f, err := bj.Forward(ctx, src, j, subject, opts...)
	if err != nil {
		t.Fatalf("Forward: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// forwardStream makes the stream "FWD" capturing "fwd.>" as ForwardStream
// configures it.
func forwardStream(t testing.TB, j jetstream.JetStream, with ...func(*jetstream.StreamConfig)) jetstream.Stream {
	t.Helper()
	cfg := bj.ForwardStream("FWD", "fwd.>")
	for _, f := range with {
		f(&cfg)
	}
	s, err := j.CreateStream(context.Background(), cfg)
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	return s
}

// stored is one record as the stream holds it.
type storedRec struct {
	seq, pos uint64
	msgID    string
	node     string
	ring     string
}

// streamRecords reads every record the stream holds, unpacking packed
// messages, and checks the headers and message ID of each message.
func streamRecords(t *testing.T, s jetstream.Stream) []storedRec {
	t.Helper()
	return streamRecordsOn(t, s, "")
}

// streamRecordsOn is streamRecords for the messages on subject ("": all).
func streamRecordsOn(t *testing.T, s jetstream.Stream, subject string) []storedRec {
	t.Helper()
	var out []storedRec
	for _, m := range streamMsgs(t, s) {
		if subject != "" && m.Subject != subject {
			continue
		}
		h := m.Header
		node, ring, id := h.Get(bj.HeaderNode), h.Get(bj.HeaderRing), h.Get(jetstream.MsgIDHeader)
		pos, err := strconv.ParseUint(h.Get(bj.HeaderPos), 10, 64)
		if err != nil {
			t.Fatalf("message %d: HeaderPos %q: %v", m.Sequence, h.Get(bj.HeaderPos), err)
		}
		wantID := node + "/" + ring + "/" + h.Get(bj.HeaderPos)
		var payloads [][]byte
		if c := h.Get(bj.HeaderCount); c != "" {
			wantID += "-" + h.Get(bj.HeaderLast)
			n, _ := strconv.Atoi(c)
			data := m.Data
			for range n {
				l := binary.LittleEndian.Uint32(data)
				payloads, data = append(payloads, data[4:4+l]), data[4+l:]
			}
			if len(data) != 0 {
				t.Fatalf("message %d: %d bytes after its %d records", m.Sequence, len(data), n)
			}
		} else {
			payloads = [][]byte{m.Data}
		}
		if id != wantID {
			t.Fatalf("message %d: got message ID %q, want %q", m.Sequence, id, wantID)
		}
		for i, p := range payloads {
			r := storedRec{seq: binary.NativeEndian.Uint64(p), pos: pos, msgID: id, node: node, ring: ring}
			if i == len(payloads)-1 && len(payloads) > 1 {
				last, _ := strconv.ParseUint(h.Get(bj.HeaderLast), 10, 64)
				r.pos = last
			} else if i > 0 {
				r.pos = 0 // inside a packed message: not carried
			}
			out = append(out, r)
		}
	}
	return out
}

// checkOnce checks that recs are the sequence numbers 0..n-1, each once,
// and (ordered) in order.
func checkOnce(t *testing.T, recs []storedRec, n int, ordered bool) {
	t.Helper()
	count := make([]int, n)
	for i, r := range recs {
		if r.seq >= uint64(n) {
			t.Fatalf("record %d: sequence %d, want below %d", i, r.seq, n)
		}
		count[r.seq]++
		if ordered && r.seq != uint64(i) {
			t.Fatalf("record %d: sequence %d, want %d (in ring order)", i, r.seq, i)
		}
	}
	for seq, c := range count {
		if c != 1 {
			t.Errorf("record %d is %d times in the stream, want once", seq, c)
		}
	}
}

// checkStats checks the Forwarder's identity once it has stopped.
func checkStats(t *testing.T, f *bj.Forwarder) bj.Stats {
	t.Helper()
	st := f.Stats()
	identity(t, "forwarder", st.Received, st.Delivered, st.Dropped, st.DecodeErrors)
	if st.Acked > st.Delivered {
		t.Errorf("got %d acked, more than %d delivered", st.Acked, st.Delivered)
	}
	return st
}

// TestForwardDelivers: records from a live BPF producer reach the stream
// exactly once, in ring order, with their headers and message IDs, one per
// message or packed; Flush returns once the ring is acknowledged.
func TestForwardDelivers(t *testing.T) {
	const n = 5000
	for _, tc := range []struct {
		name string
		opts []bj.Option
	}{
		{"one message per record", nil},
		{"packed", []bj.Option{bj.WithPacked()}},
		{"few in flight", []bj.Option{bj.WithMaxPending(3)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rb, p, j, st := fixture(t, 1<<18, 16)
			src := ackSource[rec16](t, rb, pump.WithBatch(64, 0))
			f := forward(t, t.Context(), src, j, "fwd.node1", append(tc.opts, bj.WithNode("node1"))...)
			if got, want := f.Stream(), "FWD"; got != want {
				t.Errorf("got stream %q, want %q", got, want)
			}
			var wg sync.WaitGroup
			wg.Go(func() {
				for range 10 {
					produce(t, p, n/10)
				}
			})
			wg.Wait()
			if err := f.Flush(t.Context()); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			if acked, produced := src.Positions(); acked != produced {
				t.Errorf("after Flush: ring acknowledged up to %d, produced %d; want all", acked, produced)
			}
			if err := f.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			select {
			case <-src.Done():
			default:
				t.Error("the source still runs after Close, want it closed")
			}
			recs := streamRecords(t, st)
			checkOnce(t, recs, n, true)
			for i, r := range recs {
				if r.node != "node1" || r.ring != f.Ring() || r.ring != src.RingID() {
					t.Fatalf("record %d: got node %q ring %q, want node1 and %q", i, r.node, r.ring, src.RingID())
				}
			}
			if stats := checkStats(t, f); stats.Received != n || stats.Delivered != n || stats.Acked != n || stats.Skipped != 0 {
				t.Errorf("got stats %+v, want %d received, delivered and acked", stats, n)
			}
		})
	}
}

// TestForwardPackedConsumer: packed messages round-trip through a
// Consumer, which delivers every record with its ring and node.
func TestForwardPackedConsumer(t *testing.T) {
	const n = 1000
	rb, p, j, _ := fixture(t, 1<<17, 64)
	src := ackSource[rec64](t, rb, pump.WithBatch(100, 0))
	f := forward(t, t.Context(), src, j, "fwd.node2", bj.WithNode("node2"), bj.WithPacked())
	produce(t, p, n)
	if err := f.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	c, err := j.CreateConsumer(t.Context(), "FWD", jetstream.ConsumerConfig{Durable: "reader", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	k, err := bj.NewConsumer[rec64](t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	for i := range uint64(n) {
		m := recv(t, k)
		if m.Value.Seq != i || m.Node != "node2" || m.Ring != src.RingID() {
			t.Fatalf("record %d: got sequence %d, node %q, ring %q; want %d, node2, %q", i, m.Value.Seq, m.Node, m.Ring, i, src.RingID())
		}
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if st := k.Stats(); st.Received != n || st.DecodeErrors != 0 {
		t.Errorf("consumer: got stats %+v, want %d records, no decode error", st, n)
	}
}

// TestForwardAbort: cancelling ctx stops the Forwarder at once; what the
// stream did not acknowledge stays in the ring, and a new Forwarder on the
// ring completes the stream, each record once.
func TestForwardAbort(t *testing.T) {
	const n = 3000
	rb, p, j, st := fixture(t, 1<<17, 16)
	produce(t, p, n)
	ctx, cancel := cancelled(t)
	src := ackSource[rec16](t, rb)
	// The encoder cancels ctx at the 1000th record: some records are in
	// flight then, and the rest are still in the ring.
	var calls int
	enc := func(r rec16) ([]byte, error) {
		if calls++; calls == 1000 {
			cancel()
		}
		return binary.NativeEndian.AppendUint64(make([]byte, 0, 16), r.Seq), nil
	}
	f := forward(t, ctx, src, j, "fwd.abort", bj.WithEncoder(enc))
	<-f.Done()
	if err := f.Wait(); err == nil || !strings.Contains(err.Error(), "stops") {
		t.Fatalf("Wait: got %v, want the cause", err)
	}
	if err := f.Flush(t.Context()); !errors.Is(err, ctx.Err()) && !strings.Contains(fmt.Sprint(err), "stops") {
		t.Errorf("Flush after the abort: got %v, want the cause", err)
	}
	first := checkStats(t, f)
	if first.Received == 0 || first.Received == n {
		t.Fatalf("got %d received, want the abort in the middle", first.Received)
	}

	src2 := ackSource[rec16](t, rb)
	f2 := forward(t, t.Context(), src2, j, "fwd.abort", bj.WithEncoder(func(r rec16) ([]byte, error) {
		return binary.NativeEndian.AppendUint64(make([]byte, 0, 16), r.Seq), nil
	}))
	if err := f2.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := f2.Close(); err != nil {
		t.Fatal(err)
	}
	checkOnce(t, streamRecords(t, st), n, false)
	second := checkStats(t, f2)
	t.Logf("first run %+v; second run %+v", first, second)
}

// TestForwardEncoder: a record the encoder refuses is counted and released
// with the others; the rest reach the stream.
func TestForwardEncoder(t *testing.T) {
	rb, p, j, st := fixture(t, 1<<16, 16)
	for _, packed := range []bool{false, true} {
		src := ackSource[rec16](t, rb)
		opts := []bj.Option{bj.WithEncoder(func(r rec16) ([]byte, error) {
			if r.Seq%10 == 9 {
				return nil, errTest
			}
			return binary.NativeEndian.AppendUint64(nil, r.Seq), nil
		})}
		if packed {
			opts = append(opts, bj.WithPacked())
		}
		f := forward(t, t.Context(), src, j, "fwd.enc"+strconv.FormatBool(packed), opts...)
		produce(t, p, 100)
		if err := f.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if got := checkStats(t, f); got.Received != 100 || got.DecodeErrors != 10 || got.Delivered != 90 || got.Acked != 90 {
			t.Errorf("packed %v: got stats %+v, want 100 received, 10 decode errors, 90 delivered and acked", packed, got)
		}
	}
	recs := streamRecords(t, st)
	if len(recs) != 180 {
		t.Fatalf("got %d records in the stream, want 180", len(recs))
	}
	for _, r := range recs {
		if r.seq%10 == 9 {
			t.Errorf("got record %d, which the encoder refused", r.seq)
		}
	}
}

// TestForwardSourceStops: a source stopped by its own ctx stops the
// Forwarder, which reports it.
func TestForwardSourceStops(t *testing.T) {
	rb := newRing(t, 1<<16)
	s := natstest.Start(t)
	_, j := natstest.Connect(t, s)
	forwardStream(t, j)
	ctx, cancel := cancelled(t)
	src, err := pump.RingBufAcked[rec16](ctx, rb)
	if err != nil {
		t.Fatal(err)
	}
	f := forward(t, t.Context(), src, j, "fwd.src")
	cause := cancel()
	if err := f.Wait(); !errors.Is(err, cause) || !strings.Contains(err.Error(), `"fwd.src"`) {
		t.Errorf("Wait: got %v, want the source's cause, naming the subject", err)
	}
	if err := f.Flush(t.Context()); err == nil {
		t.Error("Flush on a stopped forwarder: got nil, want an error")
	}
}

// TestForwardFlushCancel: a Flush whose ctx is cancelled returns its cause
// and the Forwarder goes on; a Flush after Close reports ErrClosed.
func TestForwardFlushCancel(t *testing.T) {
	l := natstest.StartLoopback(t)
	_, j := l.Connect()
	forwardStream(t, j)
	rb := newRing(t, 1<<16)
	p := newProducer(t, rb, 16)
	src := ackSource[rec16](t, rb)
	f := forward(t, t.Context(), src, j, "fwd.flush")
	l.Stop() // nothing is acknowledged from now on
	produce(t, p, 10)
	ctx, cancel := cancelled(t)
	flushed := make(chan error, 1)
	go func() { flushed <- f.Flush(ctx) }()
	cause := cancel()
	if err := <-flushed; !errors.Is(err, cause) {
		t.Fatalf("Flush: got %v, want the cause %v", err, cause)
	}
	l.Start()
	if err := f.Flush(t.Context()); err != nil {
		t.Fatalf("Flush once the server is back: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Flush(t.Context()); !errors.Is(err, bj.ErrClosed) {
		t.Errorf("Flush after Close: got %v, want ErrClosed", err)
	}
	if st := checkStats(t, f); st.Delivered != 10 {
		t.Errorf("got stats %+v, want 10 delivered", st)
	}
}

// TestForwardConstructionErrors: what Forward can check is an error that
// says what is wrong; it starts nothing and leaves the source to the
// caller.
func TestForwardConstructionErrors(t *testing.T) {
	rb, p, j, _ := fixture(t, 1<<16, 16)
	if _, err := j.CreateStream(t.Context(), jetstream.StreamConfig{Name: "WQ", Subjects: []string{"wq.>"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	src := ackSource[rec16](t, rb)
	for _, tc := range []struct {
		name    string
		subject string
		opts    []bj.Option
		is      error
		says    string
	}{
		{"no stream captures the subject", "other.x", nil, jetstream.ErrStreamNotFound, `"other.x"`},
		{"a work-queue stream", "wq.x", nil, bj.ErrRetention, `"WQ"`},
		{"a wildcard subject", "fwd.*", nil, bj.ErrOption, `"fwd.*"`},
		{"a subject with white space", "fwd. x", nil, bj.ErrOption, `"fwd. x"`},
		{"an option of another constructor", "fwd.x", []bj.Option{bj.WithBuffer(1)}, bj.ErrOption, "WithBuffer"},
		{"an encoder for another type", "fwd.x", []bj.Option{bj.WithEncoder(func(string) ([]byte, error) { return nil, nil })}, bj.ErrOption, "WithEncoder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := bj.Forward(t.Context(), src, j, tc.subject, tc.opts...)
			if err == nil {
				f.Close()
				t.Fatal("got no error")
			}
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("got %v, want an error matching %v that says %s", err, tc.is, tc.says)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("got a message of several lines: %q", err)
			}
		})
	}
	// The source still runs: it is the caller's.
	produce(t, p, 1)
	if b, ok := <-src.C(); !ok || len(b) != 1 || b[0].Value.Seq != 0 {
		t.Errorf("the source after the errors: got %v, %v; want the record", b, ok)
	}
}

// TestForwarderMetricCounters: a Forwarder is a metrics.Handle of its own
// kind, with its counters.
func TestForwarderMetricCounters(t *testing.T) {
	rb, p, j, _ := fixture(t, 1<<16, 16)
	f := forward(t, t.Context(), ackSource[rec16](t, rb), j, "fwd.metrics")
	produce(t, p, 2)
	if err := f.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var h metricsHandle = f
	got := make(map[string]uint64)
	h.MetricCounters(func(name string, v uint64) { got[name] = v })
	want := map[string]uint64{"received": 2, "delivered": 2, "dropped": 0, "decode_errors": 0, "retries": 0, "duplicates": 0, "acked": 2, "skipped": 0}
	if h.MetricKind() != "jetstream_forwarder" || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got kind %s, counters %v; want jetstream_forwarder, %v", h.MetricKind(), got, want)
	}
}

// flushWithin is Flush bounded by a generous liveness limit: a Forwarder
// that has everything it needs returns at once; one that has stalled would
// never return.
func flushWithin(t *testing.T, f *bj.Forwarder) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	return f.Flush(ctx)
}

// TestForwardRecordsWithoutMessage: records that need no message (skipped
// because the stream holds them, or refused by the encoder) take a place
// among the WithMaxPending in flight but bring no PubAck; a batch with
// more of them in a row than that bound, with nothing in flight, must not
// stall the Forwarder. The restart cases are the realistic ones: an agent
// killed after its last messages were stored and before the ring was
// acknowledged restarts with as many records to skip (with one message in
// flight, one is enough; with the default bound, a batch larger than it,
// as WithBatch raised for packed throughput gives).
func TestForwardRecordsWithoutMessage(t *testing.T) {
	t.Run("encoder refuses records, one in flight", func(t *testing.T) {
		rb, p, j, _ := fixture(t, 1<<16, 16)
		src := ackSource[rec16](t, rb, pump.WithBatch(64, 0))
		enc := func(r rec16) ([]byte, error) {
			if r.Seq%5 == 0 {
				return nil, errTest
			}
			return encode16(r), nil
		}
		f := forward(t, t.Context(), src, j, "fwd.refuse", bj.WithMaxPending(1), bj.WithEncoder(enc))
		produce(t, p, 20)
		if err := flushWithin(t, f); err != nil {
			t.Errorf("Flush: got %v, want nil (stats %+v)", err, f.Stats())
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if got := f.Stats(); got.Received != 20 || got.DecodeErrors != 4 || got.Delivered != 16 {
			t.Errorf("got stats %+v, want 20 received, 4 decode errors, 16 delivered", got)
		}
	})

	for _, tc := range []struct {
		name       string
		stored     int // records the previous run left in the stream, unacknowledged
		perMsg     int // records per message of the previous run (1: not packed)
		batch      int // the resuming source's batch size
		maxPending int // 0: the default
	}{
		{"restart, one in flight", 3, 1, 64, 1},
		{"restart, four in flight", 30, 1, 64, 4},
		{"restart packed, default in flight, large batches", 2100, 16, 4096, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 2500
			rb, p, j, _ := fixture(t, 1<<16, 16)
			produce(t, p, n)
			prev := previousRun{packed: tc.perMsg > 1}
			for i := 0; i < tc.stored; i += tc.perMsg {
				prev.msgs = append(prev.msgs, [2]int{i, min(i+tc.perMsg, tc.stored) - 1})
			}
			publishPrevious(t, j, ackSource[rec16](t, rb), n, "fwd.n1", "n1", prev)

			src := ackSource[rec16](t, rb, pump.WithBatch(tc.batch, 0))
			opts := []bj.Option{bj.WithNode("n1")}
			if tc.maxPending > 0 {
				opts = append(opts, bj.WithMaxPending(tc.maxPending))
			}
			if prev.packed {
				opts = append(opts, bj.WithPacked())
			}
			f := forward(t, t.Context(), src, j, "fwd.n1", opts...)
			if err := flushWithin(t, f); err != nil {
				t.Errorf("Flush: got %v, want nil (stats %+v)", err, f.Stats())
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if got := f.Stats(); got.Skipped != uint64(tc.stored) || got.Received != n || got.Delivered != n {
				t.Errorf("got stats %+v, want %d received and delivered, %d skipped", got, n, tc.stored)
			}
		})
	}
}

// TestForwardMessageSize: packed messages are cut to fit both the
// connection's maximum payload and the stream's MaxMsgSize, headers
// included, whatever the length of the node's name; a limit that leaves
// no room for one record is an error at construction naming the stream.
func TestForwardMessageSize(t *testing.T) {
	const n = 512
	long := strings.Repeat("n", 3000)
	for _, tc := range []struct {
		name       string
		maxMsgSize int32 // 0: none
		node       string
	}{
		{"the stream's MaxMsgSize", 4096, "n1"}, // 60 records of 64 bytes fit; a batch of 256 does not
		// Headers of more than the 1 KiB once assumed.
		{"the stream's MaxMsgSize and a long node name", 8192, long},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rb, p, j, st := fixture(t, 1<<18, 64, func(c *jetstream.StreamConfig) { c.MaxMsgSize = tc.maxMsgSize })
			src := ackSource[rec64](t, rb, pump.WithBatch(256, 0))
			f := forward(t, t.Context(), src, j, "fwd.big", bj.WithPacked(), bj.WithNode(tc.node))
			produce(t, p, n)
			if err := flushWithin(t, f); err != nil {
				t.Errorf("Flush: got %v, want nil", err)
			}
			if err := f.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if got := len(streamRecords(t, st)); got != n {
				t.Errorf("got %d records in the stream, want %d", got, n)
			}
		})
	}
	t.Run("no room for a record", func(t *testing.T) {
		rb := newRing(t, 1<<16)
		s := natstest.Start(t)
		_, j := natstest.Connect(t, s)
		cfg := bj.ForwardStream("TINY", "tiny.>")
		cfg.MaxMsgSize = 320 // the headers may take about 290 bytes
		if _, err := j.CreateStream(t.Context(), cfg); err != nil {
			t.Fatal(err)
		}
		src := ackSource[rec64](t, rb)
		f, err := bj.Forward(t.Context(), src, j, "tiny.x", bj.WithNode("n1"))
		if err == nil {
			f.Close()
			t.Fatal("got no error")
		}
		if !strings.Contains(err.Error(), `"TINY"`) || !strings.Contains(err.Error(), `"tiny.x"`) {
			t.Errorf("got %v, want an error naming the stream and the subject", err)
		}
	})
}

// TestForwardReadSourceHazard (a hazard the documentation states): Forward
// adopts a source whose C() the caller already read from. Its cumulative
// Ack then releases the records the caller took, which never reach the
// stream: Forward cannot tell a batch sitting in C()'s buffer from one a
// caller took, so its documentation says src must be unread.
func TestForwardReadSourceHazard(t *testing.T) {
	rb, p, j, st := fixture(t, 1<<16, 16)
	src := ackSource[rec16](t, rb)
	produce(t, p, 5)
	b := <-src.C() // the caller takes a batch and does not acknowledge it
	f := forward(t, t.Context(), src, j, "fwd.read")
	produce(t, p, 5)
	if err := flushWithin(t, f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	acked, produced := rbPositions(t, rb)
	if got := len(streamRecordsOn(t, st, "fwd.read")); acked != produced || got != 10-len(b) {
		t.Errorf("got ring acked %d of %d and %d records in the stream, want all acked and %d in the stream", acked, produced, got, 10-len(b))
	}
}
