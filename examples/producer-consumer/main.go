package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/bpfchan/bpfchan/examples/internal/cli"
	"github.com/bpfchan/bpfchan/pump"
)

// config is what the flags say.
type config struct {
	duration time.Duration // 0: until Ctrl-C (or -events)
	events   uint64        // 0: no limit
	rate     int           // events per second
	workers  int           // stage 2 workers
	queue    int           // capacity of each BPF queue
	ring     int           // ring buffer size in bytes
	full     pump.FullPolicy
	interval time.Duration
}

// program is what the shared start-up needs to know about this one.
var program = &cli.Program{
	Name: "producer-consumer",
	About: "Lab 15.2: a BPF program writes events into a ring buffer; three stages connected by\n" +
		"BPF queues filter, enrich (fanned out to workers) and aggregate them into a stats map.",
	Loading: "loading BPF programs",
	Caps:    "CAP_BPF",
	Lacks:   "this kernel lacks what the lab needs (BPF ring buffers and queues, Linux 5.8 or newer)",
	Setup:   "set up the BPF maps and program",
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
	l, err := cli.Open(program, stderr, func() (*lab, error) { return newLab(cfg) })
	if err != nil {
		return cli.ExitUsage
	}
	defer l.Close()

	fmt.Fprintln(stdout, "Lab 15.2: Producer-Consumer Pipeline")
	fmt.Fprintf(stdout, "BPF program -> ring buffer -> filter -> BPF queue 1 -> enrich (%d workers, round-robin) -> BPF queue 2 -> aggregate -> stats map\n", cfg.workers)
	fg, err := runFlow(ctx, cfg, l, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "producer-consumer: %v\n", err)
		return cli.ExitFailed
	}
	if !fg.write(stdout) {
		return cli.ExitFailed
	}
	return cli.ExitOK
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := program.FlagSet(stderr)
	cfg := config{full: pump.FullDrop}
	var full string
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "how long to run (0: until Ctrl-C or -events)")
	fs.Uint64Var(&cfg.events, "events", 0, "stop after this many events (0: no limit)")
	fs.IntVar(&cfg.rate, "rate", 20000, "events produced per second")
	fs.IntVar(&cfg.workers, "workers", 3, "stage 2 workers, fed round-robin")
	fs.IntVar(&cfg.queue, "queue", 10000, "capacity of each BPF queue")
	fs.IntVar(&cfg.ring, "ring", 256<<10, "ring buffer size in bytes (a power of two, a multiple of the page size)")
	fs.StringVar(&full, "full", "drop", "what a stage does when its output queue is full: drop (counted) or block")
	fs.DurationVar(&cfg.interval, "interval", time.Second, "progress line period")
	err := program.Parse(fs, args, stderr, func() (bad []string) {
		switch full {
		case "drop":
			cfg.full = pump.FullDrop
		case "block":
			cfg.full = pump.FullBlock
		default:
			bad = append(bad, fmt.Sprintf("-full %q: want drop or block", full))
		}
		if cfg.duration < 0 || cfg.interval <= 0 {
			bad = append(bad, "-duration must not be negative and -interval must be positive")
		}
		if cfg.rate < 1 || cfg.workers < 1 || cfg.queue < 1 {
			bad = append(bad, "-rate, -workers and -queue must be at least 1")
		}
		if page := os.Getpagesize(); cfg.ring < page || cfg.ring&(cfg.ring-1) != 0 {
			bad = append(bad, fmt.Sprintf("-ring %d: want a power of two of at least the page size (%d)", cfg.ring, page))
		}
		return bad
	})
	return cfg, err
}
