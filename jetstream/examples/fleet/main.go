package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
)

// Exit codes.
const (
	exitOK     = 0 // the figures reconcile (or -h)
	exitFailed = 1 // they do not, or the run failed
	exitUsage  = 2 // bad flags, or BPF is not available here
)

// config is what the flags say.
type config struct {
	nodes    int
	duration time.Duration // 0: until Ctrl-C
	crash    bool
	down     time.Duration
	load     int    // commands a second
	block    string // the command name the run blocks for a while; "": none
	nats     string // a server's URL; "": an embedded one
	metrics  string // host:port; "": none
	json     bool
	interval time.Duration // 0: the default for the output
	pins     string        // the bpffs directory the run's pins go under
	ring     int           // each node's ring, in bytes
}

func main() {
	if os.Getenv(agentEnv) != "" { // this process is a node agent
		os.Exit(agentMain(os.Stdin, os.Stdout, os.Stderr))
	}
	stop, abort := signals()
	os.Exit(run(stop, abort, os.Args[1:], os.Stdout, os.Stderr))
}

// signals returns a context that the first SIGINT or SIGTERM cancels (stop
// gracefully) and one that the second cancels (abort: kill the agents,
// clean up); after that the default handling is back, so a third kills the
// program. The goroutine lives as long as the process.
func signals() (stop, abort context.Context) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	stop, stopped := context.WithCancelCause(context.Background())
	abort, aborted := context.WithCancelCause(context.Background())
	go func() {
		s := <-ch
		stopped(fmt.Errorf("%v: stopping (again to abort)", s))
		s = <-ch
		aborted(fmt.Errorf("%v: aborted", s))
		signal.Reset(os.Interrupt, syscall.SIGTERM)
	}()
	return stop, abort
}

// run is the whole program; stop asks for a graceful end, abort for an
// immediate one. It returns the exit code.
func run(stop, abort context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if err := bpfAvailable(); err != nil {
		fmt.Fprintln(stderr, unavailable(err))
		return exitUsage
	}
	stderr = &syncWriter{w: stderr} // the agents' lines, the notes and the view share it
	sum, err := runFleet(stop, abort, cfg, stdout, stderr)
	if err != nil && abort.Err() != nil {
		err = context.Cause(abort) // what failed failed because of it
	}
	if err != nil {
		fmt.Fprintf(stderr, "fleet: %v\n", err)
		return exitFailed
	}
	if cfg.json {
		err = sum.writeJSON(stdout)
	} else {
		err = sum.writeText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "fleet: write the summary: %v\n", err)
		return exitFailed
	}
	if !sum.Reconciled {
		return exitFailed
	}
	return exitOK
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: sudo go run ./examples/fleet [flags]\n\n%s\n\n", about)
		fs.PrintDefaults()
	}
	var cfg config
	fs.IntVar(&cfg.nodes, "nodes", 3, "node agents to run, each a process of its own with its own probe, ring and subject")
	fs.DurationVar(&cfg.duration, "duration", 0, "how long to run (0: until Ctrl-C)")
	fs.BoolVar(&cfg.crash, "crash", false, "SIGKILL node-1's agent halfway (after 5s without -duration) and restart it on its pins")
	fs.DurationVar(&cfg.down, "down", time.Second, "how long the agent killed by -crash stays down")
	fs.IntVar(&cfg.load, "load", 100, "commands a second the demo runs itself, so that every node has system calls to trace (0: none)")
	fs.StringVar(&cfg.block, "block", "date", "a command name the demo puts into the blocked bucket a quarter into the run and deletes at three quarters (\"\": none)")
	fs.StringVar(&cfg.nats, "nats", "", "the `URL` of a NATS server with JetStream to use instead of an embedded one")
	fs.StringVar(&cfg.metrics, "metrics", "", "serve Prometheus metrics of every handle at http://`host:port`/metrics while it runs")
	fs.BoolVar(&cfg.json, "json", false, "print the final summary as JSON on stdout (the live view goes to stderr)")
	fs.DurationVar(&cfg.interval, "interval", 0, "refresh period of the live view (default 250ms on a terminal, 1s otherwise)")
	fs.StringVar(&cfg.pins, "pins", "/sys/fs/bpf", "the bpffs `directory` to pin under (a bpffs is mounted on it if it is an empty directory)")
	fs.IntVar(&cfg.ring, "ring", 8<<20, "each node's ring buffer, in `bytes` (a power of two)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	var bad []string
	if fs.NArg() > 0 {
		bad = append(bad, "unexpected arguments: "+strings.Join(fs.Args(), " "))
	}
	if cfg.nodes < 1 || cfg.nodes > 64 {
		bad = append(bad, fmt.Sprintf("-nodes %d: want 1 to 64", cfg.nodes))
	}
	if cfg.duration < 0 || cfg.interval < 0 || cfg.down < 0 || cfg.load < 0 {
		bad = append(bad, "-duration, -interval, -down and -load must not be negative")
	}
	if cfg.ring < os.Getpagesize() || cfg.ring&(cfg.ring-1) != 0 {
		bad = append(bad, fmt.Sprintf("-ring %d: want a power of two, at least a page", cfg.ring))
	}
	if cfg.block != "" {
		if _, err := commKey(cfg.block); err != nil {
			bad = append(bad, "-block: "+err.Error())
		}
	}
	if cfg.metrics != "" {
		if _, _, err := net.SplitHostPort(cfg.metrics); err != nil {
			bad = append(bad, "-metrics: "+err.Error())
		}
	}
	if len(bad) > 0 {
		err := errors.New(strings.Join(bad, "; "))
		fmt.Fprintf(stderr, "fleet: %v\n", err)
		return cfg, err
	}
	return cfg, nil
}

const about = "Runs a fleet of node agents on this machine, each tracing its share of the system calls\n" +
	"into a pinned BPF ring that it forwards to NATS JetStream exactly once, with a collector\n" +
	"checking the stream and a KV bucket of blocked command names mirrored into every node."

// bpfAvailable lifts the locked-memory limit and creates a BPF map, the
// least the agents need.
func bpfAvailable() error {
	if err := rlimit.RemoveMemlock(); err != nil {
		return err
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: uint32(os.Getpagesize())})
	if err != nil {
		return err
	}
	return m.Close()
}

// unavailable is the one sentence said when BPF cannot be used here.
func unavailable(err error) string {
	switch {
	case errors.Is(err, os.ErrPermission):
		return "fleet: loading BPF programs needs root (or CAP_BPF and CAP_PERFMON); run it as: sudo go run ./examples/fleet"
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Sprintf("fleet: this kernel cannot run the fleet's probes (BPF ring buffers and raw tracepoints, Linux 5.8 or newer): %v", err)
	default:
		return fmt.Sprintf("fleet: cannot create BPF maps (%v); run it as root on Linux 5.8 or newer: sudo go run ./examples/fleet", err)
	}
}

// syncWriter serialises the writes of several goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}
