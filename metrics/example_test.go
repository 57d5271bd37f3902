package metrics_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bpfchan/bpfchan/internal/producer"
	"github.com/bpfchan/bpfchan/metrics"
	"github.com/bpfchan/bpfchan/pump"
)

// The example drives a real BPF program from this module's internal
// producer package; it stands in for your own.

func ExampleNewCollector() {
	rb, err := ebpf.NewMap(&ebpf.MapSpec{Name: "events", Type: ebpf.RingBuf, MaxEntries: 1 << 16})
	if err != nil {
		log.Fatal(err)
	}
	defer rb.Close()
	src, err := pump.RingBuf[rec16](context.Background(), rb)
	if err != nil {
		log.Fatal(err)
	}

	// One collector for every handle of the program, in its own registry,
	// served at /metrics (mux is then given to an http.Server).
	c := metrics.NewCollector()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	c.Add("events", src)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	prod, err := producer.NewRing(rb, 16) // a BPF program writing 16-byte records
	if err != nil {
		log.Fatal(err)
	}
	defer prod.Close()
	if err := prod.Run(3); err != nil {
		log.Fatal(err)
	}
	for range 3 {
		<-src.C()
	}
	if err := src.Close(); err != nil { // a stopped pump keeps its final figures
		log.Fatal(err)
	}

	mfs, err := reg.Gather() // what a scrape of /metrics reads
	if err != nil {
		log.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "bpfchan_pump_received_total" || mf.GetName() == "bpfchan_pump_delivered_total" {
			m := mf.GetMetric()[0]
			fmt.Printf("%s{pump=%q} %v\n", mf.GetName(), m.GetLabel()[0].GetValue(), m.GetCounter().GetValue())
		}
	}
	c.Remove("events")
	// Output:
	// bpfchan_pump_delivered_total{pump="events"} 3
	// bpfchan_pump_received_total{pump="events"} 3
}

// forwarder is a handle of a module built on bpfchan: it reports its
// counters through metrics.Handle.
type forwarder struct{ published, acked uint64 }

func (f *forwarder) MetricKind() string { return "forwarder" }

func (f *forwarder) MetricCounters(emit func(name string, value uint64)) {
	emit("published", f.published)
	emit("acked", f.acked)
}

func ExampleHandle() {
	c := metrics.NewCollector()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	c.Add("fleet", &forwarder{published: 10, acked: 8})

	mfs, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		fmt.Printf("%s{%s=%q} %v\n", mf.GetName(), m.GetLabel()[0].GetName(), m.GetLabel()[0].GetValue(), m.GetCounter().GetValue())
	}
	// Output:
	// bpfchan_forwarder_acked_total{forwarder="fleet"} 8
	// bpfchan_forwarder_published_total{forwarder="fleet"} 10
}
