package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var undo = &Program{
	Name:    "undo",
	Args:    " [test|demo|multi ...]",
	About:   "Lab 15.3: an undo/redo system.",
	Loading: "creating BPF maps",
	Caps:    "CAP_BPF",
	Lacks:   "this kernel lacks BPF stack maps (Linux 4.20 or newer)",
	Setup:   "create BPF maps",
	Linux:   "4.20",
}

func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("create map: %w", os.ErrPermission),
			"undo: creating BPF maps needs root (or CAP_BPF); run it as: sudo go run ./examples/undo"},
		{fmt.Errorf("stack: %w", ebpf.ErrNotSupported),
			"undo: this kernel lacks BPF stack maps (Linux 4.20 or newer): stack: not supported"},
		{errors.New("boom"),
			"undo: cannot create BPF maps (boom); run it as root on Linux 4.20 or newer: sudo go run ./examples/undo"},
	} {
		if got := undo.Unavailable(tc.err); got != tc.want {
			t.Errorf("Unavailable(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	none := &Program{Name: "counter", About: "Lab."}
	for _, tc := range []struct {
		p      *Program
		args   []string
		check  []string
		code   int
		stderr string
	}{
		{none, nil, nil, ExitOK, ""},
		{none, []string{"-h"}, nil, ExitOK, "usage: sudo go run ./examples/counter [flags]\n\nLab.\n\n  -n int\n    \tn\n"},
		{undo, []string{"-h"}, nil, ExitOK, "usage: sudo go run ./examples/undo [flags] [test|demo|multi ...]\n\nLab 15.3: an undo/redo system.\n\n  -n int\n    \tn\n"},
		{none, []string{"-nosuchflag"}, nil, ExitUsage, "flag provided but not defined: -nosuchflag\n"},
		{none, []string{"a", "b"}, nil, ExitUsage, "counter: unexpected arguments: a b\n"},
		{none, []string{"a"}, []string{"-n bad", "-m bad"}, ExitUsage, "counter: unexpected arguments: a; -n bad; -m bad\n"},
		{undo, []string{"a"}, nil, ExitOK, ""},
		{undo, nil, []string{"-n bad"}, ExitUsage, "undo: -n bad\n"},
	} {
		var stderr bytes.Buffer
		fs := tc.p.FlagSet(&stderr)
		fs.Int("n", 0, "n")
		code := ExitOK
		if err := tc.p.Parse(fs, tc.args, &stderr, func() []string { return tc.check }); err != nil {
			code = ExitCode(err)
		}
		if code != tc.code || !bytes.HasPrefix(stderr.Bytes(), []byte(tc.stderr)) || (tc.stderr == "" && stderr.Len() > 0) {
			t.Errorf("%s %q: exit code %d, stderr %q; want %d, %q", tc.p.Name, tc.args, code, &stderr, tc.code, tc.stderr)
		}
	}
}
