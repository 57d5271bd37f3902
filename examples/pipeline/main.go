package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/bpfchan/bpfchan/examples/internal/cli"
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
	metrics   string          // address to serve Prometheus metrics on (host:port); "": none
}

// program is what the shared start-up needs to know about this one.
var program = &cli.Program{
	Name: "pipeline",
	About: "Traces every syscall on this machine through a raw tracepoint, and runs the events\n" +
		"through a bpfchan pipeline: ring buffer -> count -> filter -> BPF queue -> worker.",
	Loading: "loading a BPF program",
	Caps:    "CAP_BPF and CAP_PERFMON",
	Lacks:   "this kernel cannot run the tracer (it needs BPF ring buffers and raw tracepoints, Linux 5.8 or newer)",
	Setup:   "load the BPF tracer",
	Linux:   "5.8",
}

func main() { program.Main(run) }

// run is the whole program; it returns the exit code: 0 when the figures
// reconcile, 1 when they do not or the pipeline failed, 2 for bad flags or
// when BPF is not available here.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return cli.ExitCode(err)
	}
	tr, err := cli.Open(program, stderr, func() (*tracer, error) { return openTracer(cfg.traceSelf) })
	if err != nil {
		return cli.ExitUsage
	}
	defer tr.Close()

	sum, err := runPipeline(ctx, cfg, tr, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "pipeline: %v\n", err)
		return cli.ExitFailed
	}
	if cfg.json {
		err = sum.writeJSON(stdout)
	} else {
		err = sum.writeText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "pipeline: write summary: %v\n", err)
		return cli.ExitFailed
	}
	if !sum.Reconciled {
		return cli.ExitFailed
	}
	return cli.ExitOK
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := program.FlagSet(stderr)
	var cfg config
	fs.DurationVar(&cfg.duration, "duration", 0, "how long to run (0: until Ctrl-C)")
	fs.StringVar(&cfg.names, "important", defaultImportant, "comma-separated syscall names whose events go through the BPF queue to the worker")
	fs.BoolVar(&cfg.json, "json", false, "print the final summary as JSON on stdout (the live view goes to stderr)")
	fs.DurationVar(&cfg.interval, "interval", 0, "refresh period of the live view (default 250ms on a terminal, 1s otherwise)")
	fs.BoolVar(&cfg.traceSelf, "trace-self", false, "also trace this program's own syscalls")
	fs.StringVar(&cfg.metrics, "metrics", "", "serve Prometheus metrics of the pumps, the watcher and the stages at http://`host:port`/metrics while it runs")
	// The first problem is the one reported.
	err := program.Parse(fs, args, stderr, func() []string {
		switch {
		case fs.NArg() > 0:
			return nil // Parse reports them
		case cfg.duration < 0 || cfg.interval < 0:
			return []string{"-duration and -interval must not be negative"}
		}
		if cfg.metrics != "" {
			if _, _, err := net.SplitHostPort(cfg.metrics); err != nil {
				return []string{"-metrics: " + err.Error()}
			}
		}
		set, err := parseSyscalls(cfg.names)
		if err != nil {
			return []string{"-important: " + err.Error()}
		}
		cfg.important = set
		for nr := range set {
			if nr < uint32(len(cfg.fast)) {
				cfg.fast[nr] = true
			}
		}
		return nil
	})
	return cfg, err
}

// isImportant reports whether events of syscall nr go through the queue.
func (c *config) isImportant(nr uint32) bool {
	if nr < uint32(len(c.fast)) {
		return c.fast[nr]
	}
	return c.important[nr]
}
