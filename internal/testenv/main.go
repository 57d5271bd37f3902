package testenv

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// Main runs a package's tests, then fails the package when a test leaked a
// goroutine (goleak) or a file descriptor. Use it as the package's TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M, opts ...goleak.Option) {
	goleak.VerifyTestMain(fdChecked{m}, opts...)
}

// fdChecked wraps testing.M so that Run also compares the open file
// descriptors before and after the tests.
type fdChecked struct{ m *testing.M }

func (f fdChecked) Run() int {
	skipExamplesWithoutBPF()
	warmRuntime()
	before := openFDs()
	code := f.m.Run()
	if code != 0 {
		return code
	}
	var leaked []string
	for fd, target := range openFDs() {
		if old, ok := before[fd]; !ok || old != target {
			leaked = append(leaked, fmt.Sprintf("fd %s -> %s", fd, target))
		}
	}
	if len(leaked) > 0 {
		slices.Sort(leaked)
		fmt.Fprintf(os.Stderr, "testenv: tests leaked %d file descriptor(s):\n  %s\n",
			len(leaked), strings.Join(leaked, "\n  "))
		return 1
	}
	return 0
}

// skipExamplesWithoutBPF keeps runnable examples, which cannot call
// RequireBPF, from failing where BPF is not permitted: it skips them, says
// why, and leaves them running whenever BPFCHAN_REQUIRE_BPF=1.
func skipExamplesWithoutBPF() {
	err := bpfUnavailable()
	if err == nil || os.Getenv(RequireEnv) == "1" {
		return
	}
	if !flag.Parsed() {
		flag.Parse()
	}
	skip := "^Example"
	if prev := flag.Lookup("test.skip"); prev != nil && prev.Value.String() != "" {
		skip = prev.Value.String() + "|" + skip
	}
	if flag.Set("test.skip", skip) == nil {
		fmt.Fprintf(os.Stderr, "testenv: skipping examples: BPF not permitted: %v (set %s=1 to make this a failure)\n", err, RequireEnv)
	}
}

// warmRuntime makes the Go runtime open the descriptors it keeps for the
// life of the process (the netpoller's epoll and wake-up fds) before the
// first snapshot, so they are not mistaken for a test's leak.
func warmRuntime() {
	r, w, err := os.Pipe()
	if err != nil {
		return
	}
	_ = r.SetReadDeadline(fixedPast)
	r.Close()
	w.Close()
}

// openFDs maps each open descriptor of this process to what it points at.
func openFDs() map[string]string {
	dir := "/proc/self/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	fds := make(map[string]string, len(ents))
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // the fd ReadDir itself used, closed by now
		}
		fds[e.Name()] = target
	}
	return fds
}
