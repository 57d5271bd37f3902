package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	bpfmaps "github.com/bpfchan/bpfchan/maps"
)

// The states of a node, as the live view shows them.
const (
	stateStarting = "starting"
	stateUp       = "up"
	stateDown     = "down" // killed by -crash, not yet restarted
	stateStopping = "stopping"
	stateStopped  = "stopped"
	stateFailed   = "failed"
)

// Timeouts of the parent's dealings with an agent.
const (
	upTimeout   = 30 * time.Second // from the agent's start to its "up" report
	stopTimeout = 45 * time.Second // from closing its stdin to its exit (the flush takes at most flushTimeout)
)

// node is the parent's side of one node: its agent process (the current
// incarnation), what the agent last reported, and the probe's counters,
// which the parent reads itself from the pins, agent or no agent.
type node struct {
	name   string
	config agentConfig
	env    string // agentEnv=config as JSON

	counters *bpfmaps.PerCPUMap[uint32, uint64] // opened after the first start

	mu       sync.Mutex
	state    string
	restarts int
	gen      int // the current incarnation, counted from 1 at each launch
	statsGen int // the incarnation the last report came from
	downAt   time.Time
	downFor  time.Duration
	up       upReport    // the last incarnation's
	stats    agentStats  // the last report
	final    *agentStats // the final report, once stopped
	finalErr string
	proc     *agentProc
}

func newNode(cfg agentConfig) (*node, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	return &node{name: cfg.Node, config: cfg, env: agentEnv + "=" + string(b), state: stateStarting}, nil
}

// agentProc is one incarnation of a node's agent: a child process that
// reports on its stdout. Its reader goroutine is owned by the agentProc:
// done is closed once it has read the last report and the process has
// been waited for.
type agentProc struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	up       chan struct{} // closed at the "up" report
	upOnce   sync.Once
	done     chan struct{}
	err      error // the process's end, set before done is closed
	expected bool  // the parent killed or stopped it (guarded by the node's mu)
	gen      int   // which incarnation of the node's agent it is
}

// launch starts an agent for n and waits until it reports itself up. The
// agent runs exe (this program) with the node's configuration in its
// environment, in a process group of its own (a Ctrl-C on the terminal
// reaches the parent only, which stops the agents in order), and is killed
// by the kernel if the parent dies (Pdeathsig; where the kernel does not
// send it, the agent sees its stdin end without stopLine, and exits).
// failed receives n when the agent exits without the parent asking it to.
func (n *node) launch(ctx context.Context, exe string, stderr io.Writer, failed chan<- *node) error {
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), n.env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = &prefixWriter{w: stderr, prefix: n.name + ": "}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	n.setState(stateStarting)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start the agent: %w", n.name, err)
	}
	p := &agentProc{cmd: cmd, stdin: stdin, up: make(chan struct{}), done: make(chan struct{})}
	n.incarnate(p)
	go n.read(p, stdout, failed)

	timer := time.NewTimer(upTimeout)
	defer timer.Stop()
	select {
	case <-p.up:
		return nil
	case <-p.done:
		return fmt.Errorf("%s: the agent exited before it was up (%v)", n.name, p.err)
	case <-timer.C:
		n.kill()
		return fmt.Errorf("%s: the agent was not up after %s", n.name, upTimeout)
	case <-ctx.Done():
		n.kill()
		return context.Cause(ctx)
	}
}

// incarnate makes p the node's current agent, a new incarnation.
func (n *node) incarnate(p *agentProc) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.gen++
	p.gen = n.gen
	n.proc = p
}

// read applies p's reports until its stdout ends, then waits for the
// process.
func (n *node) read(p *agentProc, stdout io.Reader, failed chan<- *node) {
	defer close(p.done)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var r report
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			continue // not a report: a stray line
		}
		n.apply(p, r)
	}
	_, _ = io.Copy(io.Discard, stdout) // a line too long: keep the pipe flowing until the end
	p.err = p.cmd.Wait()
	n.mu.Lock()
	expected := p.expected
	if !expected {
		n.state = stateFailed
	}
	n.mu.Unlock()
	if !expected {
		select {
		case failed <- n:
		default:
		}
	}
}

// apply takes in one report of p.
func (n *node) apply(p *agentProc, r report) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case r.Kind == reportUp && r.Up != nil:
		n.up = *r.Up
		n.state = stateUp
		if !n.downAt.IsZero() {
			n.downFor += time.Since(n.downAt)
			n.downAt = time.Time{}
		}
		p.upOnce.Do(func() { close(p.up) })
	case r.Kind == reportStats && r.Stats != nil:
		n.stats, n.statsGen = *r.Stats, p.gen
	case r.Kind == reportFinal && r.Stats != nil:
		n.stats, n.statsGen = *r.Stats, p.gen
		n.final = r.Stats
		n.finalErr = r.Error
	}
}

// kill SIGKILLs the current agent and waits until it is gone.
func (n *node) kill() {
	n.mu.Lock()
	p := n.proc
	if p != nil {
		p.expected = true
	}
	n.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// crash SIGKILLs the agent as -crash does: the node is down until the
// next launch.
func (n *node) crash() {
	n.kill()
	n.mu.Lock()
	n.state = stateDown
	n.downAt = time.Now()
	n.restarts++
	n.mu.Unlock()
}

// stop asks the agent to stop gracefully (stopLine on its stdin), and waits
// until it has, for stopTimeout at most or until ctx is done; then it
// kills it. It returns an error when the agent did not stop cleanly.
func (n *node) stop(ctx context.Context) error {
	n.mu.Lock()
	p := n.proc
	if p != nil {
		p.expected = true
	}
	n.state = stateStopping
	n.mu.Unlock()
	if p == nil {
		return fmt.Errorf("%s: no agent runs", n.name)
	}
	_, _ = io.WriteString(p.stdin, stopLine+"\n") // an agent that is gone: p.done says so
	p.stdin.Close()
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		n.kill()
		n.setState(stateFailed)
		return fmt.Errorf("%s: the agent had not stopped after %s: killed", n.name, stopTimeout)
	case <-ctx.Done():
		n.kill()
		n.setState(stateFailed)
		return fmt.Errorf("%s: killed: %w", n.name, context.Cause(ctx))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.final == nil:
		n.state = stateFailed
		return fmt.Errorf("%s: the agent exited without its final report (%v)", n.name, p.err)
	case n.finalErr != "":
		n.state = stateFailed
		return fmt.Errorf("%s: %s", n.name, n.finalErr)
	case p.err != nil:
		n.state = stateFailed
		return fmt.Errorf("%s: the agent: %v", n.name, p.err)
	}
	n.state = stateStopped
	return nil
}

func (n *node) setState(s string) {
	n.mu.Lock()
	n.state = s
	n.mu.Unlock()
}

// openCounters opens the probe's pinned counters, once.
func (n *node) openCounters() error {
	if n.counters != nil {
		return nil
	}
	c, err := openCounters(n.config.Probe.Dir)
	if err != nil {
		return fmt.Errorf("%s: %w", n.name, err)
	}
	n.counters = c
	return nil
}

// kernel reads the probe's counters; zeros before the first start.
func (n *node) kernel() (kernelFigures, error) {
	if n.counters == nil {
		return kernelFigures{}, nil
	}
	return readCounters(n.counters)
}

// nodeView is a copy of what the parent knows of a node.
type nodeView struct {
	Name     string
	State    string
	Restarts int
	Down     time.Duration // in total, so far
	Up       upReport
	Stats    agentStats
	Final    *agentStats
}

func (n *node) view() nodeView {
	n.mu.Lock()
	defer n.mu.Unlock()
	down := n.downFor
	if !n.downAt.IsZero() {
		down += time.Since(n.downAt)
	}
	return nodeView{Name: n.name, State: n.state, Restarts: n.restarts, Down: down, Up: n.up, Stats: n.stats, Final: n.final}
}

// current is what the current incarnation of the agent last reported of
// its handles: nothing until its first report, so that a restarted
// agent's counters start from zero rather than from its predecessor's.
func (n *node) current() agentStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.statsGen != n.gen {
		return agentStats{}
	}
	return n.stats
}

// close releases the parent's descriptors of the node.
func (n *node) close() {
	if n.counters != nil {
		n.counters.Close()
		n.counters = nil
	}
}

// prefixWriter writes each line to w with a prefix, one Write per line, so
// that the lines of several agents do not mix. Lines are cut where the
// writes are cut, which for an agent's stderr are whole lines.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (pw *prefixWriter) Write(b []byte) (int, error) {
	_, err := pw.w.Write(append([]byte(pw.prefix), b...))
	return len(b), err
}
