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
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
)

const defaultImportant = "execve,openat,connect"

// config is what the flags say.
type config struct {
	duration  time.Duration   // 0: until Ctrl-C
	important map[uint32]bool // syscall numbers whose events go through the BPF queue
	fast      [1024]bool      // important, indexed by syscall number, for the hot path
	names     string          // the -important list, as given
	json      bool            // print the final summary as JSON
	interval  time.Duration   // refresh period of the live view; 0: the default for the output
	traceSelf bool            // also trace this process (off: the viewer would trace its own reads)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first Ctrl-C stops gracefully; restoring the default handling
	// then lets a second one kill the program.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program; it returns the exit code: 0 when the figures
// reconcile, 1 when they do not or the pipeline failed, 2 for bad flags or
// when BPF is not available here.
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
	tr, err := openTracer(cfg.traceSelf)
	if err != nil {
		fmt.Fprintln(stderr, unavailable(err))
		return 2
	}
	defer tr.Close()

	sum, err := runPipeline(ctx, cfg, tr, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "pipeline: %v\n", err)
		return 1
	}
	if cfg.json {
		err = sum.writeJSON(stdout)
	} else {
		err = sum.writeText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "pipeline: write summary: %v\n", err)
		return 1
	}
	if !sum.Reconciled {
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("pipeline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: sudo go run ./examples/pipeline [flags]\n\n"+
			"Traces every syscall on this machine through a raw tracepoint, and runs the events\n"+
			"through a bpfchan pipeline: ring buffer -> count -> filter -> BPF queue -> worker.\n\n")
		fs.PrintDefaults()
	}
	var cfg config
	fs.DurationVar(&cfg.duration, "duration", 0, "how long to run (0: until Ctrl-C)")
	fs.StringVar(&cfg.names, "important", defaultImportant, "comma-separated syscall names whose events go through the BPF queue to the worker")
	fs.BoolVar(&cfg.json, "json", false, "print the final summary as JSON on stdout (the live view goes to stderr)")
	fs.DurationVar(&cfg.interval, "interval", 0, "refresh period of the live view (default 250ms on a terminal, 1s otherwise)")
	fs.BoolVar(&cfg.traceSelf, "trace-self", false, "also trace this program's own syscalls")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
		fmt.Fprintf(stderr, "pipeline: %v\n", err)
		return cfg, err
	}
	if cfg.duration < 0 || cfg.interval < 0 {
		err := errors.New("-duration and -interval must not be negative")
		fmt.Fprintf(stderr, "pipeline: %v\n", err)
		return cfg, err
	}
	set, err := parseSyscalls(cfg.names)
	if err != nil {
		fmt.Fprintf(stderr, "pipeline: -important: %v\n", err)
		return cfg, err
	}
	cfg.important = set
	for nr := range set {
		if nr < uint32(len(cfg.fast)) {
			cfg.fast[nr] = true
		}
	}
	return cfg, nil
}

// isImportant reports whether events of syscall nr go through the queue.
func (c *config) isImportant(nr uint32) bool {
	if nr < uint32(len(c.fast)) {
		return c.fast[nr]
	}
	return c.important[nr]
}

// unavailable turns a failure to load or attach the BPF program into the one
// sentence the user sees.
func unavailable(err error) string {
	switch {
	case errors.Is(err, os.ErrPermission):
		return "pipeline: loading a BPF program needs root (or CAP_BPF and CAP_PERFMON); run it as: sudo go run ./examples/pipeline"
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Sprintf("pipeline: this kernel cannot run the tracer (it needs BPF ring buffers and raw tracepoints, Linux 5.8 or newer): %v", err)
	default:
		return fmt.Sprintf("pipeline: cannot load the BPF tracer (%v); run it as root on Linux 5.8 or newer: sudo go run ./examples/pipeline", err)
	}
}
