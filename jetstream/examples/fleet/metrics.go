package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bpfchan/bpfchan/metrics"
	"github.com/bpfchan/bpfchan/pump"

	bj "github.com/bpfchan/bpfchan/jetstream"
)

// The metric kinds of the jetstream handles a node runs, as their
// MetricKind says (it reads no field of the handle).
var (
	kindForwarder = (*bj.Forwarder)(nil).MetricKind()
	kindMirror    = (*bj.Mirror[[16]byte, uint32])(nil).MetricKind()
)

// kindKernel is the metric kind of a probe's counters.
const kindKernel = "fleet_kernel"

// shutdownGrace is how long the metrics server waits for scrapes in
// progress when it shuts down.
const shutdownGrace = 5 * time.Second

// metricsServer serves the fleet's metrics at /metrics on one goroutine,
// which shutdown waits for.
type metricsServer struct {
	c    *metrics.Collector
	srv  *http.Server
	done chan struct{}
	err  error // why Serve returned early; set before done is closed
}

// serveMetrics starts serving, on ln (which the server then owns), the
// collector's Consumer and, for every node, what its agent last reported of
// its handles (the ring's AckSource as a pump, its Forwarder and its
// Mirror) and the probe's counters, read from the pins at each scrape.
func serveMetrics(ln net.Listener, col *collector, nodes []*node) *metricsServer {
	c := metrics.NewCollector()
	c.Add("collector", col.k)
	for _, n := range nodes {
		// The Collector names each handle once, whatever its kind.
		addAgent(c, n)
		c.Add(n.name+"/probe", kernelHandle{n})
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s := &metricsServer{
		c:    c,
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		done: make(chan struct{}),
	}
	go func() { // exits when shutdown closes the server, or ln fails
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
	return s
}

// addAgent adds the handles n's agent reports. The Collector exports a
// pump's counters as the highest it has seen of each (a pump's Delivered
// can go back), so a restarted agent's ring must be added again: adding a
// name already there replaces it, and its counters start from the new
// agent's, as after any restart of a process.
func addAgent(c *metrics.Collector, n *node) {
	c.Add(n.name+"/ring", ringProxy{n})
	c.Add(n.name+"/forward", reportedHandle{n, kindForwarder})
	c.Add(n.name+"/blocked", reportedHandle{n, kindMirror})
}

// restarted exports what n's new agent reports, from zero.
func (s *metricsServer) restarted(n *node) { addAgent(s.c, n) }

// shutdown stops the server after the scrapes in progress (shutdownGrace at
// most) and returns once its goroutine has exited.
func (s *metricsServer) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if s.srv.Shutdown(ctx) != nil {
		s.srv.Close()
	}
	<-s.done
	return s.err
}

// ringProxy is a node's ring source (pump.AckSource) as its agent last
// reported it: the metrics package exports it as a pump, with its
// unacked-bytes gauge.
type ringProxy struct{ n *node }

func (r ringProxy) Stats() pump.Stats { return r.n.current().Ring }

func (r ringProxy) Positions() (acked, produced uint64) {
	st := r.n.current()
	return st.AckedPos, st.Produced
}

// reportedHandle is a node's Forwarder or Mirror as its agent last
// reported it: the counters its MetricCounters emitted.
type reportedHandle struct {
	n    *node
	kind string
}

func (h reportedHandle) MetricKind() string { return h.kind }

func (h reportedHandle) MetricCounters(emit func(string, uint64)) {
	st := h.n.current()
	cs := st.ForwardCounters
	if h.kind == kindMirror {
		cs = st.MirrorCounters
	}
	for _, c := range cs {
		emit(c.Name, c.Value)
	}
}

// kernelHandle is a node's probe counters, read from its pinned map.
type kernelHandle struct{ n *node }

func (h kernelHandle) MetricKind() string { return kindKernel }

func (h kernelHandle) MetricCounters(emit func(string, uint64)) {
	k, err := h.n.kernel()
	if err != nil {
		return
	}
	emit("events", k.Events)
	emit("ring_full", k.RingFull)
	emit("blocked", k.Blocked)
	emit("blocked_ring_full", k.BlockedFull)
}
