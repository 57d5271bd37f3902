package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/bpfchan/bpfchan/examples/internal/cli"
)

// config is what the flags say.
type config struct {
	duration  time.Duration // 0: until Ctrl-C
	interval  time.Duration // dashboard refresh
	tick      time.Duration // pause between two rounds of kernel events
	threshold uint64        // syscalls alert threshold
	window    int           // refreshes in the rolling average
}

// program is what the shared start-up needs to know about this one.
var program = &cli.Program{
	Name: "counter",
	About: "Lab 15.1: four event counters in a BPF hash map, incremented by BPF programs and from\n" +
		"userspace, shown through maps.Entry and watch.Changes with rates and threshold alerts.",
	Loading: "loading BPF programs",
	Caps:    "CAP_BPF",
	Lacks:   "this kernel cannot run the lab (it needs BPF atomic instructions, Linux 5.12 or newer)",
	Setup:   "set up the BPF map and programs",
	Linux:   "5.12",
}

func main() { program.Main(run) }

// run is the whole program; it returns the exit code: 0 when the figures
// reconcile, 1 when they do not or something failed, 2 for bad flags or when
// BPF is not available here.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return cli.ExitCode(err)
	}
	b, err := cli.Open(program, stderr, newBoard)
	if err != nil {
		return cli.ExitUsage
	}
	defer b.Close()

	out := &syncWriter{w: stdout}
	fmt.Fprintln(out, "Lab 15.1: Event Counter Dashboard (kernel hash map, BPF programs adding to it)")
	if err := b.selfTest(out); err != nil {
		fmt.Fprintf(stderr, "counter: self-test: %v\n", err)
		return cli.ExitFailed
	}
	res, err := dashboard(ctx, cfg, b, out)
	if err != nil {
		fmt.Fprintf(stderr, "counter: %v\n", err)
		return cli.ExitFailed
	}
	if !res.write(out, cfg) {
		return cli.ExitFailed
	}
	return cli.ExitOK
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := program.FlagSet(stderr)
	var cfg config
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "how long to run (0: until Ctrl-C)")
	fs.DurationVar(&cfg.interval, "interval", time.Second, "dashboard refresh period")
	fs.DurationVar(&cfg.tick, "tick", 10*time.Millisecond, "pause between two rounds of kernel events")
	fs.Uint64Var(&cfg.threshold, "threshold", 10000, "alert when the syscalls counter goes above this")
	fs.IntVar(&cfg.window, "window", 10, "refreshes in the rolling average")
	err := program.Parse(fs, args, stderr, func() (bad []string) {
		if cfg.duration < 0 || cfg.interval <= 0 || cfg.tick <= 0 {
			bad = append(bad, "-duration must not be negative, -interval and -tick must be positive")
		}
		if cfg.window < 1 {
			bad = append(bad, "-window must be at least 1")
		}
		return bad
	})
	return cfg, err
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
