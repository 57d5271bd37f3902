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

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first Ctrl-C stops gracefully; a second one kills the program.
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
	l, err := newLab(cfg)
	if err != nil {
		fmt.Fprintln(stderr, unavailable(err))
		return 2
	}
	defer l.Close()

	fmt.Fprintln(stdout, "Lab 15.2: Producer-Consumer Pipeline")
	fmt.Fprintf(stdout, "BPF program -> ring buffer -> filter -> BPF queue 1 -> enrich (%d workers, round-robin) -> BPF queue 2 -> aggregate -> stats map\n", cfg.workers)
	fg, err := runFlow(ctx, cfg, l, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "producer-consumer: %v\n", err)
		return 1
	}
	if !fg.write(stdout) {
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("producer-consumer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: sudo go run ./examples/producer-consumer [flags]\n\n"+
			"Lab 15.2: a BPF program writes events into a ring buffer; three stages connected by\n"+
			"BPF queues filter, enrich (fanned out to workers) and aggregate them into a stats map.\n\n")
		fs.PrintDefaults()
	}
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
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	var bad []string
	if fs.NArg() > 0 {
		bad = append(bad, "unexpected arguments: "+strings.Join(fs.Args(), " "))
	}
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
	if len(bad) > 0 {
		err := errors.New(strings.Join(bad, "; "))
		fmt.Fprintf(stderr, "producer-consumer: %v\n", err)
		return cfg, err
	}
	return cfg, nil
}

// unavailable turns a failure to create the maps or load the producer into
// the one sentence the user sees.
func unavailable(err error) string {
	switch {
	case errors.Is(err, os.ErrPermission):
		return "producer-consumer: loading BPF programs needs root (or CAP_BPF); run it as: sudo go run ./examples/producer-consumer"
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Sprintf("producer-consumer: this kernel lacks what the lab needs (BPF ring buffers and queues, Linux 5.8 or newer): %v", err)
	default:
		return fmt.Sprintf("producer-consumer: cannot set up the BPF maps and program (%v); run it as root on Linux 5.8 or newer: sudo go run ./examples/producer-consumer", err)
	}
}
