package main

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bpfchan/bpfchan/metrics"
	"github.com/bpfchan/bpfchan/pump"
)

// TestRestartedAgentCountsFromZero: the parent serves what each agent
// reports. After a restart the new agent's counters start from zero, for
// its ring too (the Collector exports a pump's counters as the highest it
// has seen, so the ring is added again at the restart), and until the new
// agent's first report the old one's figures are not taken for its own.
func TestRestartedAgentCountsFromZero(t *testing.T) {
	n := &node{name: "node-1"}
	c := metrics.NewCollector()
	addAgent(c, n)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()

	report := func(p *agentProc, delivered uint64) {
		n.apply(p, report{Kind: reportStats, Stats: &agentStats{
			Ring:            pump.Stats{Received: delivered, Delivered: delivered},
			ForwardCounters: []counter{{Name: "delivered", Value: delivered}},
		}})
	}
	ring := `bpfchan_pump_delivered_total{pump="node-1/ring"}`
	forward := `bpfchan_jetstream_forwarder_delivered_total{jetstream_forwarder="node-1/forward"}`
	check := func(when string, want uint64, series ...string) {
		t.Helper()
		body := scrape(t, srv.URL)
		for _, s := range series {
			if line := s + fmt.Sprintf(" %d\n", want); !strings.Contains(body, line) {
				t.Errorf("%s: got no line %q in the scrape:\n%s", when, line, grep(body, s))
			}
		}
	}

	first := &agentProc{}
	n.incarnate(first)
	report(first, 100)
	check("first agent", 100, ring, forward)

	second := &agentProc{}
	n.incarnate(second) // the crash's restart, as launch does
	report(first, 120)  // a late report of the killed agent is not the new one's
	(&metricsServer{c: c}).restarted(n)
	// A Forwarder's counters are what it emitted: none yet.
	check("restarted, before its first report", 0, ring)
	if body := scrape(t, srv.URL); strings.Contains(body, forward) {
		t.Errorf("restarted, before its first report: got %q, want no such series", grep(body, forward))
	}
	report(second, 7)
	check("restarted agent", 7, ring, forward)
}

// grep is the lines of body that start with prefix.
func grep(body, prefix string) string {
	var b strings.Builder
	for l := range strings.Lines(body) {
		if strings.HasPrefix(l, prefix) {
			b.WriteString(l)
		}
	}
	return b.String()
}
