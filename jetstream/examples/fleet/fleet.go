package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"

	bj "github.com/bpfchan/bpfchan/jetstream"
)

// The fleet's names in JetStream.
const (
	streamName    = "EVENTS"
	subjectPrefix = "events." // node N publishes on events.node-N
	bucketName    = "blocked"
)

// reportInterval is how often an agent reports its handles' figures.
const reportInterval = 250 * time.Millisecond

// drainTimeout bounds how long the collector may take, once the agents
// have stopped, to get the rest of the stream.
const drainTimeout = 30 * time.Second

// fleet is one run: the server (or the connection to -nats), the stream
// and the bucket, the collector, the load, and the nodes. Everything it
// made is undone by cleanup, in reverse order.
type fleet struct {
	cfg    config
	stderr io.Writer
	view   *view

	exe      string // this program, which the agents run
	selfComm string // its command name, which the probes do not trace
	pins     *pinDir
	nc       *nats.Conn
	j        js.JetStream
	stream   js.Stream
	kv       js.KeyValue
	cons     js.Consumer
	col      *collector
	load     *load
	nodes    []*node
	failed   chan *node // an agent that exited unasked
	seq0     uint64     // the stream's last sequence before the run
	metrics  string     // the metrics URL, "" without -metrics
	msrv     *metricsServer
	blocked  []string // the bucket's keys now, as the parent watches them
	stale    []string // the stores of killed runs, removed
	putBlock bool     // -block is in the bucket, put by this run
	undo     []func() error
}

// runFleet runs the demo until stop is done or cfg.duration has passed,
// then stops it gracefully; abort makes every wait give up and the agents
// be killed. It returns the summary, or why there is none.
func runFleet(stop, abort context.Context, cfg config, stdout, stderr io.Writer) (_ *summary, err error) {
	f := &fleet{cfg: cfg, stderr: stderr, failed: make(chan *node, 1)}
	defer func() {
		if cerr := f.cleanup(); cerr != nil {
			fmt.Fprintf(stderr, "fleet: clean up: %v\n", cerr)
		}
	}()
	out := stdout
	if cfg.json {
		out = stderr
	}
	ln, err := f.setup(abort)
	if err != nil {
		return nil, err
	}
	f.view = newView(out, cfg.interval, f.header())
	for _, s := range append(f.pins.Stale, f.stale...) {
		f.view.note("removed what a fleet whose parent is gone left: %s", s)
	}
	if err := f.startNodes(abort); err != nil {
		return nil, err
	}
	if ln != nil {
		f.msrv = serveMetrics(ln, f.col, f.nodes)
		f.onCleanup(f.msrv.shutdown)
	}
	start := time.Now()
	loopErr := f.loop(stop, abort)
	if loopErr != nil {
		f.view.note("%v", loopErr)
	}
	return f.finish(abort, start, loopErr)
}

// setup makes what the nodes need: the pin directory, the server (unless
// -nats), the stream, the bucket, the collector's consumer and the load.
// With -metrics it listens first, so that a busy address fails early.
func (f *fleet) setup(ctx context.Context) (ln net.Listener, err error) {
	if f.cfg.metrics != "" {
		if ln, err = net.Listen("tcp", f.cfg.metrics); err != nil {
			return nil, fmt.Errorf("serve metrics: %w", err)
		}
		f.onCleanup(func() error { ln.Close(); return nil }) // the metrics server closes it first
		f.metrics = "http://" + ln.Addr().String() + "/metrics"
		fmt.Fprintf(f.stderr, "fleet: serving metrics at %s\n", f.metrics)
	}
	if f.exe, err = os.Executable(); err != nil {
		return nil, err
	}
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		return nil, err
	}
	f.selfComm = strings.TrimSpace(string(comm))
	if f.pins, err = newPinDir(f.cfg.pins); err != nil {
		return nil, err
	}
	f.onCleanup(f.pins.remove)

	url := f.cfg.nats
	if url == "" {
		srv, err := startServer()
		if err != nil {
			return nil, err
		}
		f.onCleanup(srv.shutdown)
		url = srv.URL()
		f.stale = append(f.stale, srv.Stale...)
	}
	if f.nc, err = nats.Connect(url, nats.Name("fleet"), nats.MaxReconnects(-1)); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", url, err)
	}
	f.onCleanup(func() error { f.nc.Close(); return nil })
	f.cfg.nats = url
	if f.j, err = js.New(f.nc); err != nil {
		return nil, err
	}
	if f.stream, err = f.j.CreateOrUpdateStream(ctx, bj.ForwardStream(streamName, subjectPrefix+">")); err != nil {
		return nil, fmt.Errorf("stream %s: %w", streamName, err)
	}
	f.seq0 = f.stream.CachedInfo().State.LastSeq
	if f.kv, err = f.j.CreateOrUpdateKeyValue(ctx, js.KeyValueConfig{Bucket: bucketName}); err != nil {
		return nil, fmt.Errorf("bucket %s: %w", bucketName, err)
	}
	f.cons, err = f.j.CreateConsumer(ctx, streamName, js.ConsumerConfig{
		Name:              fmt.Sprintf("fleet-collector-%d", os.Getpid()),
		DeliverPolicy:     js.DeliverNewPolicy,
		AckPolicy:         js.AckExplicitPolicy,
		FilterSubject:     subjectPrefix + ">",
		MaxAckPending:     1 << 16,
		InactiveThreshold: time.Minute, // gone soon after a parent that could not delete it
	})
	if err != nil {
		return nil, fmt.Errorf("the collector's consumer: %w", err)
	}
	name := f.cons.CachedInfo().Name
	f.onCleanup(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := f.j.DeleteConsumer(ctx, streamName, name); err != nil && !errors.Is(err, js.ErrConsumerNotFound) {
			return fmt.Errorf("delete the consumer %s: %w", name, err)
		}
		return nil
	})
	names := make([]string, f.cfg.nodes)
	for i := range names {
		names[i] = fmt.Sprintf("node-%d", i+1)
	}
	if f.col, err = startCollector(ctx, f.cons, names); err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	f.onCleanup(func() error { f.col.close(); return nil }) // finish closes it first, and reports
	// The load runs before the agents start: each checks that its probe
	// writes before it reports itself up.
	f.load = startLoad(ctx, f.cfg.load, f.cfg.block)
	f.onCleanup(func() error { f.load.stop(); return nil })
	for i, name := range names {
		dir, err := f.pins.Node(name)
		if err != nil {
			return nil, err
		}
		n, err := newNode(agentConfig{
			Probe:    probeConfig{Dir: dir, Index: i, Nodes: f.cfg.nodes, SelfComm: f.selfComm, RingSize: f.cfg.ring},
			Node:     name,
			NATS:     url,
			Subject:  subjectPrefix + name,
			Bucket:   bucketName,
			Parent:   os.Getpid(),
			Interval: reportInterval,
		})
		if err != nil {
			return nil, err
		}
		f.nodes = append(f.nodes, n)
	}
	f.onCleanup(func() error {
		for _, n := range f.nodes {
			n.kill() // an agent still running after an error
			n.close()
		}
		return nil
	})
	return ln, nil
}

// header is the end of the live view's first line.
func (f *fleet) header() string {
	h := "Ctrl-C to stop"
	if f.cfg.duration > 0 {
		h = fmt.Sprintf("stops after %s, or Ctrl-C", f.cfg.duration)
	}
	h += "; JetStream at " + f.cfg.nats
	if f.metrics != "" {
		h += "; metrics at " + f.metrics
	}
	return h
}

// startNodes starts every node's agent, one after the other, and opens the
// probes' pinned counters.
func (f *fleet) startNodes(ctx context.Context) error {
	for _, n := range f.nodes {
		if err := n.launch(ctx, f.exe, f.stderr, f.failed); err != nil {
			return err
		}
		if err := n.openCounters(); err != nil {
			return err
		}
		up := n.view().Up
		f.view.note("%s up in %.2fs: link %d attaches program %d to %s, writing into ring map %d",
			n.name, up.Seconds, up.LinkID, up.ProgID, tracepoint, up.RingMapID)
	}
	return nil
}

// finish stops the load and the agents (each quiesces and detaches its
// probe, then flushes its ring), lets the collector get the rest of the
// stream, and makes the summary, which lists failed, what stopped the run
// early, if anything did.
func (f *fleet) finish(ctx context.Context, start time.Time, failed error) (*summary, error) {
	elapsed := time.Since(start)
	f.load.stop()
	stopErrs := make([]error, len(f.nodes))
	var wg sync.WaitGroup
	for i, n := range f.nodes {
		wg.Go(func() { stopErrs[i] = n.stop(ctx) })
	}
	wg.Wait()
	sum := &summary{Seconds: elapsed.Seconds(), Stream: streamName, Blocked: f.cfg.block, LoadRuns: f.load.runs.Load()}
	if failed != nil {
		sum.Problems = append(sum.Problems, failed.Error())
	}
	info, err := f.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", streamName, err)
	}
	sum.Messages = info.State.LastSeq - f.seq0
	dctx, cancel := context.WithTimeout(ctx, drainTimeout)
	derr := f.col.drain(dctx, info.State.LastSeq)
	cancel()
	if derr != nil {
		sum.Problems = append(sum.Problems, derr.Error())
	}
	if err := f.col.close(); err != nil {
		sum.Problems = append(sum.Problems, fmt.Sprintf("collector: %v", err))
	}
	figs := f.col.snapshot()
	sum.Foreign = f.col.tally.foreign
	for i, n := range f.nodes {
		v := n.view()
		k, err := n.kernel()
		ns := nodeSummary{Node: n.name, Kernel: k, Stream: figs[n.name], Restarts: v.Restarts,
			DownSeconds: v.Down.Seconds(), Stopped: stopErrs[i] == nil}
		if v.Final != nil {
			ns.Forward, ns.Mirror = counterMap(v.Final.ForwardCounters), counterMap(v.Final.MirrorCounters)
		}
		for _, e := range []error{stopErrs[i], err} {
			if e != nil {
				ns.Problems = append(ns.Problems, e.Error())
			}
		}
		sum.Nodes = append(sum.Nodes, ns)
	}
	sum.check()
	return sum, nil
}

// onCleanup adds a step to cleanup.
func (f *fleet) onCleanup(undo func() error) { f.undo = append(f.undo, undo) }

// cleanup undoes what the run made, last first, and returns what failed.
func (f *fleet) cleanup() error {
	var errs []error
	for i := len(f.undo) - 1; i >= 0; i-- {
		errs = append(errs, f.undo[i]())
	}
	return joinErrors(errs...)
}
