package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/bpfchan/bpfchan/examples/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// program is what the shared start-up needs to know about this one.
var program = &cli.Program{
	Name: "undo",
	Args: " [test|demo|multi ...]",
	About: "Lab 15.3: an undo/redo system over two BPF stack maps, the document in a BPF hash map.\n" +
		"With no argument it runs the three parts in turn.",
	Loading: "creating BPF maps",
	Caps:    "CAP_BPF",
	Lacks:   "this kernel lacks BPF stack maps (Linux 4.20 or newer)",
	Setup:   "create BPF maps",
	Linux:   "4.20",
}

// run is the whole program; it returns the exit code: 0 when every step gave
// the document the lab expects, 1 when one did not or a map operation
// failed, 2 for bad arguments or when BPF is not available here.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := program.FlagSet(stderr)
	depth := fs.Int("depth", 100, "capacity of each stack map (the oldest operation is forgotten when full)")
	wait := fs.Duration("wait", 100*time.Millisecond, "how long undo and redo wait for an operation before saying there is none (the lab's deref timeout)")
	err := program.Parse(fs, args, stderr, func() []string {
		if *depth < 1 || *wait < 0 {
			return []string{"-depth must be at least 1 and -wait not negative"}
		}
		for _, a := range fs.Args() {
			if !slices.ContainsFunc(scripts, func(s script) bool { return s.name == a }) {
				return []string{fmt.Sprintf("unknown part %q (want test, demo or multi)", a)}
			}
		}
		return nil
	})
	if err != nil {
		return cli.ExitCode(err)
	}
	var chosen []script
	for _, s := range scripts {
		if fs.NArg() == 0 || slices.Contains(fs.Args(), s.name) {
			chosen = append(chosen, s)
		}
	}

	newManager := func() (*Manager, error) { return NewManager(*depth, *wait, stdout) }
	probe, err := cli.Open(program, stderr, newManager) // the first kernel object tells whether BPF is usable
	if err != nil {
		return cli.ExitUsage
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
			return cli.ExitFailed
		}
		failed += n
		finals = append(finals, fmt.Sprintf("%s %q", s.name, s.steps[len(s.steps)-1].want))
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "\n%d steps did not give the lab's document\n", failed)
		return cli.ExitFailed
	}
	fmt.Fprintf(stdout, "\nEvery step gave the lab's document; final: %s\n", strings.Join(finals, ", "))
	return cli.ExitOK
}
