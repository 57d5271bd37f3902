package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/bpfchan/bpfchan/examples/internal/clitest"
	"github.com/bpfchan/bpfchan/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestRun runs the program for two seconds while child processes make
// syscalls (execve and openat among them), and checks that events arrived,
// went through the queue to the worker, and that the figures reconcile.
func TestRun(t *testing.T) {
	testenv.RequireBPF(t)

	stop := syscallsElsewhere()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-duration", "2s", "-json"}, &stdout, &stderr)
	stop()

	if code != 0 {
		t.Fatalf("run: exit code %d, want 0; stderr:\n%s\nstdout:\n%s", code, &stderr, &stdout)
	}
	var s summary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatalf("decode the JSON summary: %v\n%s", err, &stdout)
	}
	t.Logf("received %d, counted %d, important %d, enqueued %d, worked %d, dropped %v",
		s.Received, s.Counted, s.Matched, s.Enqueued, s.Worked, s.Dropped)
	if !s.Reconciled || len(s.Problems) > 0 {
		t.Errorf("figures do not reconcile: %q", s.Problems)
	}
	if s.Received == 0 {
		t.Errorf("received %d events, want some", s.Received)
	}
	if s.Worked == 0 {
		t.Errorf("worked %d important events, want some (the test runs execve in a loop)", s.Worked)
	}
	if got, want := s.Received, s.Counted; got != want {
		t.Errorf("received %d, counted %d: want equal", got, want)
	}
	if s.Matched != s.Enqueued || s.Enqueued != s.Worked {
		t.Errorf("important %d, enqueued %d, worked %d: want equal", s.Matched, s.Enqueued, s.Worked)
	}
	if len(s.Top) == 0 {
		t.Errorf("no top syscalls in the summary")
	}
}

// syscallsElsewhere runs /bin/true in a loop until stop is called, which
// returns once the loop has ended. Each run is an execve and a few openat
// calls, from a process other than this one (the program does not trace
// itself).
func syscallsElsewhere() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			_ = exec.CommandContext(ctx, "true").Run()
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}

// TestText runs the program with the text summary and a non-default set of
// important syscalls.
func TestText(t *testing.T) {
	out := clitest.Run(context.Background(), t, run, "-duration", "1s", "-important", "execve,connect")
	clitest.Contains(t, out, "(important: execve,connect)", "syscalls traced", "the figures reconcile")
}

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-important", "openat,nosuchcall"}, `unknown syscall "nosuchcall"`},
		{[]string{"-duration", "-1s"}, "must not be negative"},
		{[]string{"extra"}, "unexpected arguments: extra"},
		{[]string{"-metrics", "9100"}, "-metrics: address 9100: missing port in address"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), tc.args, &stdout, &stderr); code != 2 {
			t.Errorf("run %q: exit code %d, want 2", tc.args, code)
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("run %q: stderr %q, want it to contain %q", tc.args, stderr.String(), tc.want)
		}
	}
}

// TestParseSyscalls: names resolve to the numbers of the running kernel's
// architecture, for every architecture the project builds for (the
// default -important list among them), and numbers always work.
func TestParseSyscalls(t *testing.T) {
	defer func(names map[uint32]string) { syscallNames = names }(syscallNames)
	for _, tc := range []struct {
		arch           string
		execve, openat uint32
	}{
		{"amd64", 59, 257},
		{"arm64", 221, 56},
		{"386", 11, 295},
		{"arm", 11, 322},
		{"riscv64", 221, 56},
		{"ppc64le", 11, 286},
		{"loong64", 221, 56},
	} {
		syscallNames = syscallTables[tc.arch]
		if _, err := parseSyscalls(defaultImportant); err != nil {
			t.Errorf("%s: the default -important %q: %v", tc.arch, defaultImportant, err)
		}
		got, err := parseSyscalls("execve, OPENAT,42")
		if err != nil {
			t.Errorf("%s: %v", tc.arch, err)
			continue
		}
		if len(got) != 3 || !got[tc.execve] || !got[tc.openat] || !got[42] {
			t.Errorf("%s: parseSyscalls: got %v, want %d, %d and 42", tc.arch, got, tc.execve, tc.openat)
		}
		if name := syscallName(tc.openat); name != "openat" {
			t.Errorf("%s: syscallName(%d) = %q, want openat", tc.arch, tc.openat, name)
		}
	}
	syscallNames = syscallTables["no such architecture"]
	if _, err := parseSyscalls("execve"); err == nil || !strings.Contains(err.Error(), "use numbers") {
		t.Errorf("a name on an architecture without a table: got %v, want an error saying to use numbers", err)
	}
	if got, err := parseSyscalls("59"); err != nil || !got[59] {
		t.Errorf("a number on an architecture without a table: got %v, %v", got, err)
	}
	if name := syscallName(59); name != "sys_59" {
		t.Errorf("syscallName(59) without a table = %q, want sys_59", name)
	}
}

// TestArchOf: kernel machine strings name the table of their kernel's
// architecture.
func TestArchOf(t *testing.T) {
	for _, tc := range []struct{ machine, want string }{
		{"x86_64", "amd64"},
		{"aarch64", "arm64"},
		{"armv8l", "arm64"}, // uname under linux32 on an arm64 kernel
		{"i686", "386"},     // a 32-bit x86 kernel, or linux32 on x86_64 where /proc/sys/kernel/arch is missing
		{"i386", "386"},
		{"i586", "386"},
		{"armv7l", "arm"},
		{"armv6l", "arm"},
		{"armv5tel", "arm"},
		{"riscv64", "riscv64"},
		{"ppc64le", "ppc64le"},
		{"loongarch64", "loong64"},
		{"s390x", "s390x"}, // no table (big-endian: no BPF object either)
	} {
		if got := archOf(tc.machine); got != tc.want {
			t.Errorf("archOf(%q) = %q, want %q", tc.machine, got, tc.want)
		}
	}
	if _, ok := syscallTables[kernelArch()]; !ok {
		t.Errorf("no syscall table for this machine's kernel (%q)", kernelArch())
	}
}

// TestUnprivileged runs the built program as an unprivileged user: it must
// say in one sentence what is missing and how to run it, and exit with 2.
func TestUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to an unprivileged user")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the program: %v", err)
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} { // the unprivileged user must reach the binary
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "pipeline")
	build := exec.Command(gobin, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	cmd := exec.Command(bin, "-duration", "1s")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if code != 2 {
		t.Fatalf("exit code %d (%v), want 2; stderr:\n%s", code, err, &stderr)
	}
	msg := strings.TrimSpace(stderr.String())
	if strings.Count(msg, "\n") > 0 || !strings.Contains(msg, "sudo go run ./examples/pipeline") {
		t.Errorf("stderr %q: want one line saying how to run it", msg)
	}
	if stdout.Len() > 0 {
		t.Errorf("stdout %q: want nothing", &stdout)
	}
}

// TestMetrics runs the program with -metrics on a free loopback port and
// scrapes it while it runs, until the ring pump's figures show events: every
// handle of the flow is there. A server left running once run has returned
// (its goroutines, its listener) fails TestMain's leak checks; a dial of the
// port would not tell, since another process may have it by then.
func TestMetrics(t *testing.T) {
	testenv.RequireBPF(t)

	defer syscallsElsewhere()()

	stderr := &urlWriter{url: make(chan string, 1)}
	var stdout bytes.Buffer
	code := -1
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		code = run(context.Background(), []string{"-duration", "3s", "-json", "-metrics", "127.0.0.1:0"}, &stdout, stderr)
	}()
	var url string
	select {
	case url = <-stderr.url:
	case <-ran:
		t.Fatalf("run: exit code %d before serving metrics; stderr:\n%s", code, stderr)
	}

	client := &http.Client{Transport: &http.Transport{}}
	var body string
	for !strings.Contains(body, `bpfchan_stage_in_total{group="pipeline",stage="count"} `) ||
		strings.Contains(body, `bpfchan_pump_received_total{pump="events"} 0`+"\n") {
		select {
		case <-ran:
			t.Fatalf("the scrapes never showed events received:\n%s", body)
		default:
		}
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
		}
		body = string(b)
	}
	client.CloseIdleConnections()
	for _, series := range []string{
		`bpfchan_pump_received_total{pump="events"} `,
		`bpfchan_pump_delivered_total{pump="important_writer"} `,
		`bpfchan_pump_delivered_total{pump="important"} `,
		`bpfchan_watch_polls_total{watch="counts"} `,
		`bpfchan_stage_in_total{group="pipeline",stage="pick"} `,
		`bpfchan_stage_in_total{group="pipeline",stage="worker"} `,
	} {
		if !strings.Contains(body, series) {
			t.Errorf("scrape: no %s...", series)
		}
	}

	<-ran
	if code != 0 {
		t.Errorf("run: exit code %d, want 0; stderr:\n%s", code, stderr)
	}
}

// urlWriter keeps what is written, and sends the URL of the "serving
// metrics at" line on url.
type urlWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
	url chan string
}

func (w *urlWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for line := range strings.Lines(string(p)) {
		if u, ok := strings.CutPrefix(line, "pipeline: serving metrics at "); ok {
			w.url <- strings.TrimSpace(u)
		}
	}
	return w.buf.Write(p)
}

func (w *urlWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
