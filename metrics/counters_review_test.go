package metrics_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bpfchan/bpfchan/metrics"
	"github.com/bpfchan/bpfchan/pump"
)

// scrapeOne returns the value of one series of c (c holds one handle).
func scrapeOne(c *metrics.Collector, name string) float64 {
	return testutil.ToFloat64(only(c, name))
}

// awaitPublished returns once the handle's published Stats satisfy ok, or
// fails the test after failAfter.
func awaitPublished(tb testing.TB, stats func() pump.Stats, what string, ok func(pump.Stats) bool) {
	tb.Helper()
	deadline := time.Now().Add(failAfter)
	for !ok(stats()) {
		if time.Now().After(deadline) {
			tb.Fatalf("stats %+v after %v, want %s", stats(), failAfter, what)
		}
		runtime.Gosched()
	}
}

// TestReviewCountersNeverGoDown: a Prometheus counter must never decrease
// while its series lives (a decrease is read as a counter reset: rate()
// and increase() then add the whole new value, a spike as large as the
// counter). The Collector exports pump.Stats fields as counters, and
// keeps a stopped handle's final figures, but the pump takes figures back
// when it stops:
//
//   - a Source aborted by ctx takes back what sits in C()'s buffer and
//     moves it from Delivered to Dropped (rule 4: Delivered is exactly what
//     receivers got), so bpfchan_pump_delivered_total falls;
//   - an AckSource's Close (its ordinary stop) takes back the batches in
//     C()'s buffer and the one in hand, and subtracts them from Received
//     and Delivered (they stay in the ring, uncounted), so both
//     bpfchan_pump_received_total and bpfchan_pump_delivered_total fall.
//
// Each case lets the pump fill C()'s buffer of 4 and block (it publishes
// its Stats before blocking), scrapes, stops the pump, scrapes again.
func TestReviewCountersNeverGoDown(t *testing.T) {
	type handle interface {
		Stats() pump.Stats
		Close() error
		Wait() error
	}
	for _, tc := range []struct {
		name  string
		start func(ctx context.Context, t *testing.T) handle
		stop  func(h handle, cancel context.CancelFunc)
	}{
		{"source aborted", func(ctx context.Context, t *testing.T) handle {
			rb := newRing(t)
			produce(t, ringProducer(t, rb), 10)
			src, err := pump.RingBuf[rec16](ctx, rb, pump.WithBuffer(4))
			if err != nil {
				t.Fatal(err)
			}
			return src
		}, func(h handle, cancel context.CancelFunc) { cancel(); h.Wait() }},
		{"acked source closed", func(ctx context.Context, t *testing.T) handle {
			rb := newRing(t)
			produce(t, ringProducer(t, rb), 10)
			src, err := pump.RingBufAcked[rec16](ctx, rb, pump.WithBuffer(4), pump.WithBatch(1, 0))
			if err != nil {
				t.Fatal(err)
			}
			return src
		}, func(h handle, _ context.CancelFunc) { h.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(bg)
			defer cancel()
			h := tc.start(ctx, t)
			defer h.Wait()
			awaitPublished(t, h.Stats, "C()'s buffer of 4 full", func(st pump.Stats) bool { return st.Delivered == 4 })
			c := metrics.NewCollector()
			c.Add("events", h)
			names := []string{"bpfchan_pump_received_total", "bpfchan_pump_delivered_total", "bpfchan_pump_dropped_total"}
			before := make([]float64, len(names))
			for i, n := range names {
				before[i] = scrapeOne(c, n)
			}
			tc.stop(h, cancel)
			for i, n := range names {
				if after := scrapeOne(c, n); after < before[i] {
					t.Errorf("%s: %v while the pump ran, %v once it stopped: a counter went down", n, before[i], after)
				}
			}
			t.Logf("stats at the stop: %+v", h.Stats())
		})
	}
}

// TestReviewAckSourceUnacked: the unacked-bytes gauge of a real
// RingBufAcked source (the package's own test uses a stand-in): it
// follows Positions while the source runs, and after the source stopped
// it keeps the figure of the stop (what waits in the ring for the next
// reader). (Passes.)
func TestReviewAckSourceUnacked(t *testing.T) {
	const rec = 16 + 8 // a rec16 record with its header
	rb := newRing(t)
	produce(t, ringProducer(t, rb), 10)
	src, err := pump.RingBufAcked[rec16](bg, rb, pump.WithBatch(10, 0))
	if err != nil {
		t.Fatal(err)
	}
	c := metrics.NewCollector()
	c.Add("durable", src)
	var batch []pump.Record[rec16]
	select {
	case batch = <-src.C():
	case <-time.After(failAfter):
		t.Fatalf("no batch after %v", failAfter)
	}
	const name = "bpfchan_pump_unacked_bytes"
	if got, want := scrapeOne(c, name), float64(10*rec); got != want {
		t.Errorf("%s before any Ack: %v, want %v", name, got, want)
	}
	if err := src.Ack(batch[3].Pos); err != nil {
		t.Fatal(err)
	}
	if got, want := scrapeOne(c, name), float64(6*rec); got != want {
		t.Errorf("%s after acking 4 records: %v, want %v", name, got, want)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := scrapeOne(c, name), float64(6*rec); got != want {
		t.Errorf("%s after the source stopped: %v, want %v", name, got, want)
	}
	if got := scrapeOne(c, "bpfchan_pump_acked_total"); got != 4 {
		t.Errorf("acked_total after the stop: %v, want 4", got)
	}
}

// TestReviewLintRealHandles: promlint and a pedantic registry over the
// handles the package's lint test does not build for real: a RingBufAcked
// source (its unacked gauge and acked counter) and a UserRingBuf sink,
// running and after they stopped. (Passes.)
func TestReviewLintRealHandles(t *testing.T) {
	rb := newRing(t)
	produce(t, ringProducer(t, rb), 3)
	acked, err := pump.RingBufAcked[rec16](bg, rb)
	if err != nil {
		t.Fatal(err)
	}
	urb := newMap(t, &ebpf.MapSpec{Name: "test_urb", Type: ebpf.UserRingbuf, MaxEntries: 4096})
	sink, err := pump.UserRingBuf[rec16](bg, urb)
	if err != nil {
		t.Fatal(err)
	}
	sink.C() <- rec16{Seq: 1}
	c := metrics.NewCollector()
	c.Add("durable", acked)
	c.Add("commands", sink)
	for _, when := range []string{"running", "stopped"} {
		problems, err := testutil.CollectAndLint(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s: lint: %s: %s", when, p.Metric, p.Text)
		}
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(c)
		if _, err := reg.Gather(); err != nil {
			t.Errorf("%s: pedantic registry: %v", when, err)
		}
		if when == "running" {
			closeAll(t, acked, sink)
		}
	}
}
