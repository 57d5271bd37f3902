package metrics_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bpfchan/bpfchan/metrics"
	"github.com/bpfchan/bpfchan/pipeline"
	"github.com/bpfchan/bpfchan/pump"
	"github.com/bpfchan/bpfchan/watch"
)

// TestRingPump: five records through a real ring pump, then Close; every
// pump series, exactly, and the same on a second scrape (a stopped pump
// keeps its final figures).
func TestRingPump(t *testing.T) {
	rb := newRing(t)
	p := ringProducer(t, rb)
	src, err := pump.RingBuf[rec16](bg, rb)
	if err != nil {
		t.Fatal(err)
	}
	produce(t, p, 5)
	recvN(t, src.C(), 5)
	closeAll(t, src)

	c := metrics.NewCollector()
	c.Add("events", src)
	want := `
# HELP bpfchan_pump_acked_total Delivered records of a durable ring (RingBufAcked) released to the kernel by Ack.
# TYPE bpfchan_pump_acked_total counter
bpfchan_pump_acked_total{pump="events"} 0
# HELP bpfchan_pump_decode_errors_total Records that failed to decode, or values that failed to encode.
# TYPE bpfchan_pump_decode_errors_total counter
bpfchan_pump_decode_errors_total{pump="events"} 0
# HELP bpfchan_pump_delivered_total Records a source sent on its channel, or values a sink pushed into the kernel.
# TYPE bpfchan_pump_delivered_total counter
bpfchan_pump_delivered_total{pump="events"} 5
# HELP bpfchan_pump_dropped_total Records or values dropped by an overflow or full policy, or abandoned by an abort.
# TYPE bpfchan_pump_dropped_total counter
bpfchan_pump_dropped_total{pump="events"} 0
# HELP bpfchan_pump_empty_polls_total Polls (pops or peeks) that found the queue or stack empty.
# TYPE bpfchan_pump_empty_polls_total counter
bpfchan_pump_empty_polls_total{pump="events"} 0
# HELP bpfchan_pump_full_retries_total Pushes repeated, or waits for room, because the map (a queue, a stack, a user ring buffer) was full.
# TYPE bpfchan_pump_full_retries_total counter
bpfchan_pump_full_retries_total{pump="events"} 0
# HELP bpfchan_pump_lost_samples_total Perf samples the kernel reported lost (perf pumps only).
# TYPE bpfchan_pump_lost_samples_total counter
bpfchan_pump_lost_samples_total{pump="events"} 0
# HELP bpfchan_pump_overwritten_total Older values a sink with FullOverwrite evicted from its full map.
# TYPE bpfchan_pump_overwritten_total counter
bpfchan_pump_overwritten_total{pump="events"} 0
# HELP bpfchan_pump_polls_total Pops and pushes a queue or stack pump attempted, and the shared waiting goroutine's peeks at its idle map.
# TYPE bpfchan_pump_polls_total counter
bpfchan_pump_polls_total{pump="events"} 0
# HELP bpfchan_pump_received_total Records a source took out of the kernel, or values a sink took from its channel.
# TYPE bpfchan_pump_received_total counter
bpfchan_pump_received_total{pump="events"} 5
`
	for scrape := 1; scrape <= 2; scrape++ {
		if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
			t.Errorf("scrape %d: %v", scrape, err)
		}
	}
}

// TestQueuePumps: a queue writer, a queue reader and a Duplex (exported as
// the sum of its directions) after a known number of values. Polls depend
// on timing and are left out.
func TestQueuePumps(t *testing.T) {
	q, qd := newQueue(t), newQueue(t)
	w, err := pump.QueueWriter[rec16](bg, q)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		w.C() <- rec16{Seq: uint64(i)}
	}
	closeAll(t, w) // every value pushed before the reader starts
	r, err := pump.Queue[rec16](bg, q)
	if err != nil {
		t.Fatal(err)
	}
	recvN(t, r.C(), 3)
	closeAll(t, r)
	d, err := pump.QueueChannel[rec16](bg, qd)
	if err != nil {
		t.Fatal(err)
	}
	d.In() <- rec16{Seq: 1}
	d.In() <- rec16{Seq: 2}
	recvN(t, d.Out(), 2)
	closeAll(t, d)

	c := metrics.NewCollector()
	c.Add("writer", w)
	c.Add("reader", r)
	c.Add("duplex", d)
	want := `
# HELP bpfchan_pump_delivered_total Records a source sent on its channel, or values a sink pushed into the kernel.
# TYPE bpfchan_pump_delivered_total counter
bpfchan_pump_delivered_total{pump="duplex"} 4
bpfchan_pump_delivered_total{pump="reader"} 3
bpfchan_pump_delivered_total{pump="writer"} 3
# HELP bpfchan_pump_dropped_total Records or values dropped by an overflow or full policy, or abandoned by an abort.
# TYPE bpfchan_pump_dropped_total counter
bpfchan_pump_dropped_total{pump="duplex"} 0
bpfchan_pump_dropped_total{pump="reader"} 0
bpfchan_pump_dropped_total{pump="writer"} 0
# HELP bpfchan_pump_full_retries_total Pushes repeated, or waits for room, because the map (a queue, a stack, a user ring buffer) was full.
# TYPE bpfchan_pump_full_retries_total counter
bpfchan_pump_full_retries_total{pump="duplex"} 0
bpfchan_pump_full_retries_total{pump="reader"} 0
bpfchan_pump_full_retries_total{pump="writer"} 0
# HELP bpfchan_pump_received_total Records a source took out of the kernel, or values a sink took from its channel.
# TYPE bpfchan_pump_received_total counter
bpfchan_pump_received_total{pump="duplex"} 4
bpfchan_pump_received_total{pump="reader"} 3
bpfchan_pump_received_total{pump="writer"} 3
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"bpfchan_pump_received_total", "bpfchan_pump_delivered_total",
		"bpfchan_pump_dropped_total", "bpfchan_pump_full_retries_total"); err != nil {
		t.Error(err)
	}
}

// TestWatcher: a whole-map watcher over a hash map of three entries, with
// its initial state reported, then closed: baseline poll + Close's last
// poll, three changes delivered. The time spent polling is left out.
func TestWatcher(t *testing.T) {
	h := newHash(t)
	for k := range uint32(3) {
		if err := h.Put(k, uint64(k)); err != nil {
			t.Fatal(err)
		}
	}
	w, err := watch.Map[uint32, uint64](bg, h, watch.WithInterval(time.Hour), watch.WithInitial())
	if err != nil {
		t.Fatal(err)
	}
	recvN(t, w.C(), 3)
	closeAll(t, w)

	c := metrics.NewCollector()
	c.Add("counts", w)
	want := `
# HELP bpfchan_watch_changes_total Changes the polls observed.
# TYPE bpfchan_watch_changes_total counter
bpfchan_watch_changes_total{watch="counts"} 3
# HELP bpfchan_watch_coalesced_total Changes merged into, or cancelled out with, a pending event of the same key.
# TYPE bpfchan_watch_coalesced_total counter
bpfchan_watch_coalesced_total{watch="counts"} 0
# HELP bpfchan_watch_decode_errors_total Changes whose key or value failed to decode, skipped.
# TYPE bpfchan_watch_decode_errors_total counter
bpfchan_watch_decode_errors_total{watch="counts"} 0
# HELP bpfchan_watch_discarded_total Pending events dropped because the watcher was aborted or a poll failed.
# TYPE bpfchan_watch_discarded_total counter
bpfchan_watch_discarded_total{watch="counts"} 0
# HELP bpfchan_watch_events_total Events the watcher delivered on its channel.
# TYPE bpfchan_watch_events_total counter
bpfchan_watch_events_total{watch="counts"} 3
# HELP bpfchan_watch_interval_seconds The pause before the watcher's next poll.
# TYPE bpfchan_watch_interval_seconds gauge
bpfchan_watch_interval_seconds{watch="counts"} 3600
# HELP bpfchan_watch_pending Events waiting for the consumer (at most one per key).
# TYPE bpfchan_watch_pending gauge
bpfchan_watch_pending{watch="counts"} 0
# HELP bpfchan_watch_polls_total Polls of the watched map, the baseline read and failed polls included.
# TYPE bpfchan_watch_polls_total counter
bpfchan_watch_polls_total{watch="counts"} 2
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"bpfchan_watch_changes_total", "bpfchan_watch_coalesced_total", "bpfchan_watch_decode_errors_total",
		"bpfchan_watch_discarded_total", "bpfchan_watch_events_total", "bpfchan_watch_interval_seconds",
		"bpfchan_watch_pending", "bpfchan_watch_polls_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c, "bpfchan_watch_poll_seconds_total"); n != 1 {
		t.Errorf("bpfchan_watch_poll_seconds_total: got %d series, want 1", n)
	}
}

// TestGroup: four values through Map -> Tee(2) -> two ForEach, one of them
// filtering; every stage's series (busy time left out), branches included.
func TestGroup(t *testing.T) {
	g, _ := pipeline.New(bg)
	in := make(chan int)
	doubled := pipeline.Map(g, in, func(_ context.Context, v int) (int, error) { return 2 * v, nil }, pipeline.Name("double"))
	outs := pipeline.Tee(g, doubled, 2, pipeline.Name("copy"))
	pipeline.ForEach(g, outs[0], func(context.Context, int) error { return nil }, pipeline.Name("all"))
	big := pipeline.Filter(g, outs[1], func(_ context.Context, v int) (bool, error) { return v > 2, nil }, pipeline.Name("big"), pipeline.Workers(2))
	pipeline.ForEach(g, big, func(context.Context, int) error { return nil }, pipeline.Name("sink"))
	for i := range 4 {
		in <- i
	}
	close(in)
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}

	c := metrics.NewCollector()
	c.Add("flow", g)
	want := `
# HELP bpfchan_stage_branch_dropped_total Values one output of a Tee or Shard dropped by its Overflow policy.
# TYPE bpfchan_stage_branch_dropped_total counter
bpfchan_stage_branch_dropped_total{branch="0",group="flow",stage="copy"} 0
bpfchan_stage_branch_dropped_total{branch="1",group="flow",stage="copy"} 0
# HELP bpfchan_stage_branch_out_total Values one output of a Tee or Shard passed on.
# TYPE bpfchan_stage_branch_out_total counter
bpfchan_stage_branch_out_total{branch="0",group="flow",stage="copy"} 4
bpfchan_stage_branch_out_total{branch="1",group="flow",stage="copy"} 4
# HELP bpfchan_stage_dropped_total Values (Batch: batches) a stage dropped by its Overflow policy, summed over its outputs.
# TYPE bpfchan_stage_dropped_total counter
bpfchan_stage_dropped_total{group="flow",stage="all"} 0
bpfchan_stage_dropped_total{group="flow",stage="big"} 0
bpfchan_stage_dropped_total{group="flow",stage="copy"} 0
bpfchan_stage_dropped_total{group="flow",stage="double"} 0
bpfchan_stage_dropped_total{group="flow",stage="sink"} 0
# HELP bpfchan_stage_in_total Values a pipeline stage received from its inputs.
# TYPE bpfchan_stage_in_total counter
bpfchan_stage_in_total{group="flow",stage="all"} 4
bpfchan_stage_in_total{group="flow",stage="big"} 4
bpfchan_stage_in_total{group="flow",stage="copy"} 4
bpfchan_stage_in_total{group="flow",stage="double"} 4
bpfchan_stage_in_total{group="flow",stage="sink"} 2
# HELP bpfchan_stage_out_total Values (Batch: batches) a stage passed on, summed over its outputs.
# TYPE bpfchan_stage_out_total counter
bpfchan_stage_out_total{group="flow",stage="all"} 0
bpfchan_stage_out_total{group="flow",stage="big"} 2
bpfchan_stage_out_total{group="flow",stage="copy"} 8
bpfchan_stage_out_total{group="flow",stage="double"} 4
bpfchan_stage_out_total{group="flow",stage="sink"} 0
# HELP bpfchan_stage_workers Workers running the stage's callback.
# TYPE bpfchan_stage_workers gauge
bpfchan_stage_workers{group="flow",stage="all"} 1
bpfchan_stage_workers{group="flow",stage="big"} 2
bpfchan_stage_workers{group="flow",stage="copy"} 1
bpfchan_stage_workers{group="flow",stage="double"} 1
bpfchan_stage_workers{group="flow",stage="sink"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"bpfchan_stage_in_total", "bpfchan_stage_out_total", "bpfchan_stage_dropped_total", "bpfchan_stage_workers",
		"bpfchan_stage_branch_out_total", "bpfchan_stage_branch_dropped_total"); err != nil {
		t.Error(err)
	}
	if got, want := testutil.CollectAndCount(c, "bpfchan_stage_busy_seconds_total"), 5; got != want {
		t.Errorf("bpfchan_stage_busy_seconds_total: got %d series, want %d", got, want)
	}
}

// publisher is a Handle of a kind bpfchan does not know, as the jetstream
// module's handles are.
type publisher struct{ published, acked uint64 }

func (p *publisher) MetricKind() string { return "publisher" }
func (p *publisher) MetricCounters(emit func(string, uint64)) {
	emit("published", p.published)
	emit("acked", p.acked)
}

// TestHandle: a Handle's counters are exported under its kind.
func TestHandle(t *testing.T) {
	c := metrics.NewCollector()
	c.Add("fleet", &publisher{published: 7, acked: 5})
	want := `
# HELP bpfchan_publisher_acked_total The acked count of a publisher, as its MetricCounters reports it.
# TYPE bpfchan_publisher_acked_total counter
bpfchan_publisher_acked_total{publisher="fleet"} 5
# HELP bpfchan_publisher_published_total The published count of a publisher, as its MetricCounters reports it.
# TYPE bpfchan_publisher_published_total counter
bpfchan_publisher_published_total{publisher="fleet"} 7
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// badCounters is a Handle that emits a name Prometheus cannot take, and
// keeps emit to call it after MetricCounters returned.
type badCounters struct{ kept func(string, uint64) }

func (b *badCounters) MetricKind() string { return "bad" }
func (b *badCounters) MetricCounters(emit func(string, uint64)) {
	emit("ok", 1)
	emit("Not-Snake", 2)
	b.kept = emit
}

// TestHandleBadCounter: a counter name that is not snake_case is an error
// of the scrape, not a panic; the other counters are still gathered, and an
// emit after MetricCounters returned is ignored.
func TestHandleBadCounter(t *testing.T) {
	c := metrics.NewCollector()
	b := &badCounters{}
	c.Add("b", b)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err == nil || !strings.Contains(err.Error(), `"Not-Snake" is not snake_case`) {
		t.Errorf("Gather: got error %v, want one naming the counter %q", err, "Not-Snake")
	}
	if len(mfs) != 1 || mfs[0].GetName() != "bpfchan_bad_ok_total" {
		t.Errorf("Gather: got %v, want bpfchan_bad_ok_total alone", mfs)
	}
	b.kept("late", 3) // must not send on the scrape's channel
}

// ackSource stands in for a RingBufAcked source until pump has one: a real
// pump with the AckSource's Positions method.
type ackSource struct {
	*pump.Source[rec16]
	acked, produced uint64
}

func (a *ackSource) Positions() (uint64, uint64) { return a.acked, a.produced }

// TestUnackedBytes: a pump with Positions also exports how far it lags.
func TestUnackedBytes(t *testing.T) {
	rb := newRing(t)
	src, err := pump.RingBuf[rec16](bg, rb)
	if err != nil {
		t.Fatal(err)
	}
	closeAll(t, src)
	c := metrics.NewCollector()
	c.Add("durable", &ackSource{Source: src, acked: 4096, produced: 4096 + 240})
	want := `
# HELP bpfchan_pump_unacked_bytes Bytes committed to a durable ring (RingBufAcked) and not yet acknowledged: how far its consumer lags.
# TYPE bpfchan_pump_unacked_bytes gauge
bpfchan_pump_unacked_bytes{pump="durable"} 240
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "bpfchan_pump_unacked_bytes"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c, "bpfchan_pump_delivered_total"); n != 1 {
		t.Errorf("bpfchan_pump_delivered_total: got %d series, want 1", n)
	}
}

// allKinds returns a collector with one handle of every kind, stopped.
func allKinds(t *testing.T) *metrics.Collector {
	rb, q, h := newRing(t), newQueue(t), newHash(t)
	src, err := pump.RingBuf[rec16](bg, rb)
	if err != nil {
		t.Fatal(err)
	}
	d, err := pump.QueueChannel[rec16](bg, q)
	if err != nil {
		t.Fatal(err)
	}
	w, err := watch.Map[uint32, uint64](bg, h)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := pipeline.New(bg)
	for _, o := range pipeline.Shard(g, pipeline.From(g, src), 2, func(r rec16) int { return int(r.Seq) }, pipeline.Name("shard")) {
		pipeline.ForEach(g, o, func(context.Context, rec16) error { return nil })
	}
	g.Stop()
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	closeAll(t, d, w)

	c := metrics.NewCollector()
	c.Add("ring", src)
	c.Add("acked", &ackSource{Source: src})
	c.Add("duplex", d)
	c.Add("counts", w)
	c.Add("flow", g)
	c.Add("fleet", &publisher{})
	return c
}

// TestLint: every kind's metrics pass promlint, and a pedantic registry
// gathers them without error.
func TestLint(t *testing.T) {
	c := allKinds(t)
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatalf("pedantic registry: register: %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("pedantic registry: gather: %v", err)
	}
	if got, want := len(mfs), 10+1+9+7+2+2; got != want {
		t.Errorf("gathered %d metric families, want %d", got, want)
	}
}
