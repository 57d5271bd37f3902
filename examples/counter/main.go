package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
)

// config is what the flags say.
type config struct {
	duration  time.Duration // 0: until Ctrl-C
	interval  time.Duration // dashboard refresh
	tick      time.Duration // pause between two rounds of kernel events
	threshold uint64        // syscalls alert threshold
	window    int           // refreshes in the rolling average
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first Ctrl-C stops gracefully; a second one kills the program.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program; it returns the exit code: 0 when the figures
// reconcile, 1 when they do not or something failed, 2 for bad flags or when
// BPF is not available here.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		fmt.Fprintln(stderr, unavailable(err))
		return 2
	}
	b, err := newBoard()
	if err != nil {
		fmt.Fprintln(stderr, unavailable(err))
		return 2
	}
	defer b.Close()

	out := &syncWriter{w: stdout}
	fmt.Fprintln(out, "Lab 15.1: Event Counter Dashboard (kernel hash map, BPF programs adding to it)")
	if err := b.selfTest(out); err != nil {
		fmt.Fprintf(stderr, "counter: self-test: %v\n", err)
		return 1
	}
	res, err := dashboard(ctx, cfg, b, out)
	if err != nil {
		fmt.Fprintf(stderr, "counter: %v\n", err)
		return 1
	}
	if !res.write(out, cfg) {
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("counter", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: sudo go run ./examples/counter [flags]\n\n"+
			"Lab 15.1: four event counters in a BPF hash map, incremented by BPF programs and from\n"+
			"userspace, shown through maps.Entry and watch.Changes with rates and threshold alerts.\n\n")
		fs.PrintDefaults()
	}
	var cfg config
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "how long to run (0: until Ctrl-C)")
	fs.DurationVar(&cfg.interval, "interval", time.Second, "dashboard refresh period")
	fs.DurationVar(&cfg.tick, "tick", 10*time.Millisecond, "pause between two rounds of kernel events")
	fs.Uint64Var(&cfg.threshold, "threshold", 10000, "alert when the syscalls counter goes above this")
	fs.IntVar(&cfg.window, "window", 10, "refreshes in the rolling average")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	var bad []string
	if fs.NArg() > 0 {
		bad = append(bad, "unexpected arguments: "+strings.Join(fs.Args(), " "))
	}
	if cfg.duration < 0 || cfg.interval <= 0 || cfg.tick <= 0 {
		bad = append(bad, "-duration must not be negative, -interval and -tick must be positive")
	}
	if cfg.window < 1 {
		bad = append(bad, "-window must be at least 1")
	}
	if len(bad) > 0 {
		err := errors.New(strings.Join(bad, "; "))
		fmt.Fprintf(stderr, "counter: %v\n", err)
		return cfg, err
	}
	return cfg, nil
}

// unavailable turns a failure to create the map or load the programs into
// the one sentence the user sees.
func unavailable(err error) string {
	switch {
	case errors.Is(err, os.ErrPermission):
		return "counter: loading BPF programs needs root (or CAP_BPF); run it as: sudo go run ./examples/counter"
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Sprintf("counter: this kernel cannot run the lab (it needs BPF atomic instructions, Linux 5.12 or newer): %v", err)
	default:
		return fmt.Sprintf("counter: cannot set up the BPF map and programs (%v); run it as root on Linux 5.12 or newer: sudo go run ./examples/counter", err)
	}
}

// syncWriter serialises the dashboard's and the alerts' lines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
