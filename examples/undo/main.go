package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program; it returns the exit code: 0 when every step gave
// the document the lab expects, 1 when one did not or a map operation
// failed, 2 for bad arguments or when BPF is not available here.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("undo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: sudo go run ./examples/undo [flags] [test|demo|multi ...]\n\n"+
			"Lab 15.3: an undo/redo system over two BPF stack maps, the document in a BPF hash map.\n"+
			"With no argument it runs the three parts in turn.\n\n")
		fs.PrintDefaults()
	}
	depth := fs.Int("depth", 100, "capacity of each stack map (the oldest operation is forgotten when full)")
	wait := fs.Duration("wait", 100*time.Millisecond, "how long undo and redo wait for an operation before saying there is none (the lab's deref timeout)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *depth < 1 || *wait < 0 {
		fmt.Fprintln(stderr, "undo: -depth must be at least 1 and -wait not negative")
		return 2
	}
	var chosen []script
	for _, s := range scripts {
		if fs.NArg() == 0 || slices.Contains(fs.Args(), s.name) {
			chosen = append(chosen, s)
		}
	}
	for _, a := range fs.Args() {
		if !slices.ContainsFunc(scripts, func(s script) bool { return s.name == a }) {
			fmt.Fprintf(stderr, "undo: unknown part %q (want test, demo or multi)\n", a)
			return 2
		}
	}

	newManager := func() (*Manager, error) { return NewManager(*depth, *wait, stdout) }
	if err := rlimit.RemoveMemlock(); err != nil {
		fmt.Fprintln(stderr, unavailable(err))
		return 2
	}
	probe, err := newManager() // the first kernel object tells whether BPF is usable
	if err != nil {
		fmt.Fprintln(stderr, unavailable(err))
		return 2
	}
	probe.Close()

	fmt.Fprintln(stdout, "Lab 15.3: Undo/Redo System with Stack Channels")
	fmt.Fprintln(stdout, "(undo and redo stacks are BPF stack maps, the document a BPF hash map)")
	failed := 0
	var finals []string
	for _, s := range chosen {
		n, err := s.play(ctx, stdout, newManager)
		if err != nil {
			fmt.Fprintf(stderr, "undo: %s: %v\n", s.name, err)
			return 1
		}
		failed += n
		finals = append(finals, fmt.Sprintf("%s %q", s.name, s.steps[len(s.steps)-1].want))
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "\n%d steps did not give the lab's document\n", failed)
		return 1
	}
	fmt.Fprintf(stdout, "\nEvery step gave the lab's document; final: %s\n", strings.Join(finals, ", "))
	return 0
}

// unavailable turns a failure to create the maps into the one sentence the
// user sees.
func unavailable(err error) string {
	switch {
	case errors.Is(err, os.ErrPermission):
		return "undo: creating BPF maps needs root (or CAP_BPF); run it as: sudo go run ./examples/undo"
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Sprintf("undo: this kernel lacks BPF stack maps (Linux 4.20 or newer): %v", err)
	default:
		return fmt.Sprintf("undo: cannot create BPF maps (%v); run it as root on Linux 4.20 or newer: sudo go run ./examples/undo", err)
	}
}
