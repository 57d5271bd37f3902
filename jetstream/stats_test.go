package jetstream_test

import (
	"fmt"
	"testing"

	bj "github.com/bpfchan/bpfchan/jetstream"
	"github.com/bpfchan/bpfchan/jetstream/internal/natstest"
)

// metricsHandle is the core metrics package's Handle, by duck typing.
type metricsHandle interface {
	MetricKind() string
	MetricCounters(emit func(name string, value uint64))
}

func TestMetricCounters(t *testing.T) {
	s := natstest.Start(t)
	_, j := natstest.Connect(t, s)
	createStream(t, j)
	p, err := bj.NewPublisher[event](t.Context(), j, "ev.m")
	if err != nil {
		t.Fatal(err)
	}
	p.C() <- event{}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	var h metricsHandle = p
	got := make(map[string]uint64)
	h.MetricCounters(func(name string, v uint64) { got[name] = v })
	want := map[string]uint64{"received": 1, "delivered": 1, "dropped": 0, "decode_errors": 0, "retries": 0, "duplicates": 0}
	if h.MetricKind() != "jetstream_publisher" || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got kind %s, counters %v; want jetstream_publisher, %v", h.MetricKind(), got, want)
	}
	var _ metricsHandle = (*bj.Consumer[event])(nil)
	var _ metricsHandle = (*bj.Mirror[uint32, uint64])(nil)
}
