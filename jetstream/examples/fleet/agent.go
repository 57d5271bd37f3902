package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf/rlimit"
	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"

	"github.com/bpfchan/bpfchan/pump"

	bj "github.com/bpfchan/bpfchan/jetstream"
)

// agentEnv names the environment variable that makes this binary a node
// agent; its value is the agent's configuration, as JSON.
const agentEnv = "BPFCHAN_FLEET_AGENT"

// agentConfig is what the parent tells a node agent.
type agentConfig struct {
	Probe    probeConfig   `json:"probe"`
	Node     string        `json:"node"`
	NATS     string        `json:"nats"`    // the server's URL
	Subject  string        `json:"subject"` // events.<node>
	Bucket   string        `json:"bucket"`  // the KV bucket of blocked command names
	Parent   int           `json:"parent"`  // the parent's pid: an agent whose parent is gone stops at once
	Interval time.Duration `json:"interval"`
}

// Timeouts of an agent's start and stop.
const (
	writingTimeout = 10 * time.Second // the probe must be seen writing within this
	flushTimeout   = 30 * time.Second // the ring's last records must reach the stream within this
)

// stopLine is what the parent writes on an agent's stdin to stop it.
const stopLine = "stop"

// agentMain is a node agent's process: it loads (or, after a restart,
// checks) its probe, forwards its pinned ring to the stream, mirrors the
// blocked bucket into its probe's map, and reports to the parent on
// stdout. It stops gracefully when the parent writes stopLine on its stdin
// (or at SIGTERM or SIGINT), and at once when its stdin ends without it
// (the parent died). It returns the exit code.
func agentMain(stdin io.Reader, stdout, stderr io.Writer) int {
	start := time.Now()
	var cfg agentConfig
	if err := json.Unmarshal([]byte(os.Getenv(agentEnv)), &cfg); err != nil {
		fmt.Fprintf(stderr, "agent: read the configuration in %s: %v\n", agentEnv, err)
		return 1
	}
	// Pdeathsig kills an agent whose parent dies; one that died before
	// this process started has no one to send it.
	if os.Getppid() != cfg.Parent {
		fmt.Fprintln(stderr, "agent: the fleet's parent is gone")
		return 1
	}
	stop, orphaned := make(chan struct{}), make(chan struct{})
	go func() { // exits at EOF: the parent closed stdin, or died
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			if sc.Text() == stopLine {
				close(stop)
				_, _ = io.Copy(io.Discard, stdin)
				return
			}
		}
		close(orphaned)
	}()
	sig, unsig := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer unsig()

	a, err := startAgent(cfg, start)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	out := json.NewEncoder(stdout)
	if err := out.Encode(report{Kind: reportUp, Up: &a.up}); err != nil {
		a.abort()
		return 1
	}
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	var failed error
loop:
	for {
		select {
		case <-tick.C:
			st := a.stats()
			if err := out.Encode(report{Kind: reportStats, Stats: &st}); err != nil {
				failed = fmt.Errorf("report: %w", err)
				break loop
			}
		case <-stop:
			break loop
		case <-orphaned:
			// The parent died without asking: no one waits for a
			// flush. Pdeathsig would have killed this process already,
			// where the kernel sends it.
			a.abort()
			return 1
		case <-sig.Done():
			break loop
		case <-a.fwd.Done():
			failed = fmt.Errorf("forwarder stopped: %w", a.fwd.Wait())
			break loop
		case <-a.mirror.Done():
			failed = fmt.Errorf("mirror stopped: %w", a.mirror.Wait())
			break loop
		}
	}
	if failed != nil {
		fmt.Fprintf(stderr, "agent: %v\n", failed)
		a.abort()
		return 1
	}
	st, err := a.stop()
	r := report{Kind: reportFinal, Stats: &st}
	if err != nil {
		r.Error = err.Error()
		fmt.Fprintf(stderr, "agent: stop: %v\n", err)
	}
	if out.Encode(r) != nil || err != nil {
		return 1
	}
	return 0
}

// agent is a running node agent's handles.
type agent struct {
	cfg    agentConfig
	probe  *probe
	nc     *nats.Conn
	src    *pump.AckSource[event]
	fwd    *bj.Forwarder
	mirror *bj.Mirror[[16]byte, uint32]
	cancel context.CancelCauseFunc
	up     upReport
}

// startAgent opens the probe, checks it writes, and starts the Forwarder and
// the Mirror; it returns once the Mirror holds the bucket's snapshot.
func startAgent(cfg agentConfig, start time.Time) (_ *agent, err error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("agent: remove the memlock limit: %w", err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	a := &agent{cfg: cfg, cancel: cancel}
	defer func() {
		if err != nil {
			a.abort()
		}
	}()
	if a.probe, a.up.attachInfo, err = openProbe(cfg.Probe); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if a.src, err = pump.RingBufAcked[event](ctx, a.probe.maps.Events); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a.up.RingID = a.src.RingID()
	if a.up.Writing, err = a.waitWriting(ctx); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if a.nc, err = nats.Connect(cfg.NATS, nats.Name(cfg.Node), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond)); err != nil {
		return nil, fmt.Errorf("agent: connect to %s: %w", cfg.NATS, err)
	}
	j, err := js.New(a.nc)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if a.fwd, err = bj.Forward(ctx, a.src, j, cfg.Subject, bj.WithNode(cfg.Node), bj.WithPacked()); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	kv, err := j.KeyValue(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("agent: bucket %q: %w", cfg.Bucket, err)
	}
	a.mirror, err = bj.NewMirror[[16]byte, uint32](ctx, kv, a.probe.maps.Blocked,
		bj.WithKeyDecoder(commKey), bj.WithValueDecoder(func([]byte) (uint32, error) { return 1, nil }))
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	select {
	case <-a.mirror.Synced():
	case <-a.mirror.Done():
		return nil, fmt.Errorf("agent: mirror of bucket %q: %w", cfg.Bucket, a.mirror.Wait())
	}
	a.up.Seconds = time.Since(start).Seconds()
	return a, nil
}

// commKey turns a bucket key, a plain command name as `nats kv put blocked
// curl 1` writes it, into the probe's map key: the name NUL-padded to 16
// bytes, as the kernel holds a task's comm.
func commKey(name string) (k [16]byte, err error) {
	if name == "" || len(name) > 15 {
		return k, fmt.Errorf("command name %q: want 1 to 15 bytes", name)
	}
	copy(k[:], name)
	return k, nil
}

// commName is the command name of a NUL-padded comm.
func commName(comm [16]byte) string {
	name, _, _ := strings.Cut(string(comm[:]), "\x00")
	return name
}

// waitWriting waits until the probe is seen writing into the ring: its
// producer position moves, or, the ring being full, its ring-full counter
// does. It says which.
func (a *agent) waitWriting(ctx context.Context) (string, error) {
	_, produced := a.src.Positions()
	k, err := a.probe.figures()
	if err != nil {
		return "", err
	}
	deadline := time.NewTimer(writingTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-deadline.C:
			return "", fmt.Errorf("the probe wrote nothing into ring map %d for %s (link %d, program %d): no system calls in this node's share?",
				a.up.RingMapID, writingTimeout, a.up.LinkID, a.up.ProgID)
		case <-ctx.Done():
			return "", context.Cause(ctx)
		}
		if _, p := a.src.Positions(); p > produced {
			return "ring", nil
		}
		now, err := a.probe.figures()
		if err != nil {
			return "", err
		}
		if now.RingFull > k.RingFull {
			return "ring full", nil
		}
	}
}

// stats reads the figures of the agent's handles.
func (a *agent) stats() agentStats {
	acked, produced := a.src.Positions()
	return agentStats{
		Ring:            a.src.Stats(),
		AckedPos:        acked,
		Produced:        produced,
		Forward:         a.fwd.Stats(),
		Mirror:          a.mirror.Stats(),
		ForwardCounters: countersOf(a.fwd),
		MirrorCounters:  countersOf(a.mirror),
	}
}

// stop ends the agent gracefully: it closes the probe's gate and detaches
// the probe (its counters are final), forwards what the ring still holds,
// then closes every handle. The pins stay, for the parent to read.
func (a *agent) stop() (agentStats, error) {
	passed, qerr := a.probe.quiesce()
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	ferr := a.fwd.Flush(ctx)
	cancel()
	if ferr != nil {
		ferr = fmt.Errorf("flush: %w", ferr)
	}
	err := joinErrors(qerr, ferr, a.fwd.Close(), a.mirror.Close())
	st := a.stats()
	st.Passed = passed
	a.nc.Close()
	a.cancel(errors.New("agent stopped"))
	return st, joinErrors(err, a.probe.Close())
}

// abort stops whatever runs, at once. The probe stays attached through its
// pinned link, and the ring keeps what was not acknowledged.
func (a *agent) abort() {
	a.cancel(errors.New("agent aborted"))
	switch {
	case a.fwd != nil:
		_ = a.fwd.Wait() // it closes the source
	case a.src != nil:
		_ = a.src.Wait()
	}
	if a.mirror != nil {
		_ = a.mirror.Wait()
	}
	if a.nc != nil {
		a.nc.Close()
	}
	if a.probe != nil {
		a.probe.Close()
	}
}
