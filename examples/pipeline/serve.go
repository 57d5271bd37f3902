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
)

// shutdownGrace is how long a shutdown waits for scrapes in progress.
const shutdownGrace = 5 * time.Second

// metricsServer serves a flow's metrics at /metrics, from a registry of its
// own, on one goroutine that shutdown waits for.
type metricsServer struct {
	srv  *http.Server
	done chan struct{} // closed when Serve has returned
	err  error         // why Serve returned, unless shutdown made it; set before done is closed
}

// serveMetrics starts serving f's handles on ln; the server owns ln.
func serveMetrics(ln net.Listener, f flow) *metricsServer {
	c := metrics.NewCollector()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	f.Export(c)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s := &metricsServer{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, // a client that never sends its headers
		done: make(chan struct{}),
	}
	go func() { // exits when shutdown closes the server, or when ln fails
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
	return s
}

// shutdown stops accepting scrapes, lets those in progress finish (for
// shutdownGrace at most, then closes their connections), and returns once
// the server's goroutine has exited, with the error that stopped it early,
// if any.
func (s *metricsServer) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if s.srv.Shutdown(ctx) != nil {
		s.srv.Close()
	}
	<-s.done
	return s.err
}
