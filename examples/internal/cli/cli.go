package cli

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

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
)

// The exit codes of the example programs.
const (
	ExitOK     = 0 // the run went as the program expects (or -h)
	ExitFailed = 1 // the figures do not reconcile, or the run failed
	ExitUsage  = 2 // bad flags or arguments, or BPF is not available here
)

// Program describes one example program: its name, its usage text, and what
// it needs from the kernel, for the sentence [Program.Unavailable] writes.
type Program struct {
	// Name is the program's directory under examples/; it names the flag set
	// and prefixes every message.
	Name string
	// Args is what the usage line shows after "[flags]" (" [a|b ...]"); when
	// it is empty the program takes no arguments and Parse rejects any.
	Args string
	// About is the usage text's paragraph, between the usage line and the
	// flags.
	About string

	// Loading is what needs privileges ("loading BPF programs"), and Caps
	// the capabilities that stand in for root ("CAP_BPF").
	Loading, Caps string
	// Lacks is what is said when the kernel does not support what the
	// program needs ("this kernel lacks BPF stack maps (Linux 4.20 or
	// newer)").
	Lacks string
	// Setup is what failed otherwise ("create BPF maps"), and Linux the
	// oldest kernel release that runs the program ("4.20").
	Setup, Linux string
}

// Main runs run with a context that the first SIGINT or SIGTERM cancels and
// exits the process with the code run returns. After that first signal the
// default handling is back, so a second one kills the program.
func (p *Program) Main(run func(ctx context.Context, args []string, stdout, stderr io.Writer) int) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// FlagSet returns the program's flag set, which writes its usage and its
// errors to stderr.
func (p *Program) FlagSet(stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(p.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: sudo go run ./examples/%s [flags]%s\n\n%s\n\n", p.Name, p.Args, p.About)
		fs.PrintDefaults()
	}
	return fs
}

// Parse parses args with fs, then checks them: arguments left after the
// flags are a problem when the program takes none, and check (which may be
// nil) returns the others. All the problems are written to stderr in one
// line prefixed with the program's name, and returned as the error.
// [ExitCode] gives the exit code for Parse's error.
func (p *Program) Parse(fs *flag.FlagSet, args []string, stderr io.Writer, check func() []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	var bad []string
	if p.Args == "" && fs.NArg() > 0 {
		bad = append(bad, "unexpected arguments: "+strings.Join(fs.Args(), " "))
	}
	if check != nil {
		bad = append(bad, check()...)
	}
	if len(bad) == 0 {
		return nil
	}
	err := errors.New(strings.Join(bad, "; "))
	fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
	return err
}

// ExitCode is the exit code for an error from Parse: [ExitOK] for -h, which
// asked for the usage text, [ExitUsage] otherwise.
func ExitCode(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	return ExitUsage
}

// Open lifts the locked-memory limit and calls open, which creates the
// program's first kernel objects. When either fails, it writes p's one
// sentence ([Program.Unavailable]) to stderr and returns the error; the
// program then exits with [ExitUsage].
func Open[T any](p *Program, stderr io.Writer, open func() (T, error)) (T, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		fmt.Fprintln(stderr, p.Unavailable(err))
		var zero T
		return zero, err
	}
	v, err := open()
	if err != nil {
		fmt.Fprintln(stderr, p.Unavailable(err))
	}
	return v, err
}

// Unavailable turns a failure to create the program's kernel objects into the
// one sentence the user sees: what is missing and how to run the program.
func (p *Program) Unavailable(err error) string {
	switch {
	case errors.Is(err, os.ErrPermission):
		return fmt.Sprintf("%s: %s needs root (or %s); run it as: sudo go run ./examples/%[1]s", p.Name, p.Loading, p.Caps)
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Sprintf("%s: %s: %v", p.Name, p.Lacks, err)
	default:
		return fmt.Sprintf("%s: cannot %s (%v); run it as root on Linux %s or newer: sudo go run ./examples/%[1]s", p.Name, p.Setup, err, p.Linux)
	}
}
