package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/bpfchan/bpfchan/jetstream/internal/testenv"
)

// TestMain runs the package's tests, or a node agent when the test binary
// is run again by a test's fleet.
func TestMain(m *testing.M) {
	if os.Getenv(agentEnv) != "" {
		os.Exit(agentMain(os.Stdin, os.Stdout, os.Stderr))
	}
	if args, ok := os.LookupEnv(mainEnv); ok { // TestUnprivileged's child
		ctx := context.Background()
		os.Exit(run(ctx, ctx, strings.Fields(args), os.Stdout, os.Stderr))
	}
	testenv.Main(m)
}

// mainEnv makes the test binary run the program with the arguments it
// holds, as TestUnprivileged's child.
const mainEnv = "BPFCHAN_FLEET_TEST_MAIN"

// TestUnprivileged runs the program as an unprivileged user: it must say
// in one sentence what is missing and how to run it, and exit with 2.
func TestUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to an unprivileged user")
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} { // the unprivileged user must reach the binary
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "fleet")
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), mainEnv+"=-duration 1s")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != exitUsage {
		t.Fatalf("got exit code %d (%v), want %d; stderr:\n%s", code, err, exitUsage, &stderr)
	}
	msg := strings.TrimSpace(stderr.String())
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "sudo go run ./examples/fleet") || stdout.Len() > 0 {
		t.Errorf("got stderr %q, stdout %q; want one line saying how to run it, nothing on stdout", msg, &stdout)
	}
}

// TestFleetCrash runs the demo with two nodes for a few seconds, node-1's
// agent killed with SIGKILL halfway and restarted, the blocked name put and
// deleted, and metrics served: the scrapes show every node's handles, and
// the summary reconciles, node by node.
func TestFleetCrash(t *testing.T) {
	pins := testenv.BPFFS(t)
	stderr := newWatchWriter()
	var stdout bytes.Buffer
	code := -1
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		ctx := t.Context()
		code = run(ctx, ctx, []string{"-nodes", "2", "-crash", "-down", "300ms", "-duration", "4s", "-interval", "250ms",
			"-json", "-pins", pins, "-metrics", "127.0.0.1:0"}, &stdout, stderr)
	}()

	var url string
	select {
	case url = <-stderr.url:
	case <-ran:
		t.Fatalf("run: exit code %d before serving metrics; stderr:\n%s", code, stderr)
	}
	series := []string{
		`bpfchan_jetstream_consumer_received_total{jetstream_consumer="collector"} `,
		`bpfchan_pump_delivered_total{pump="node-1/ring"} `,
		`bpfchan_pump_unacked_bytes{pump="node-2/ring"} `,
		`bpfchan_jetstream_forwarder_delivered_total{jetstream_forwarder="node-1/forward"} `,
		`bpfchan_jetstream_forwarder_acked_total{jetstream_forwarder="node-2/forward"} `,
		`bpfchan_jetstream_mirror_received_total{jetstream_mirror="node-2/blocked"} `,
		`bpfchan_fleet_kernel_events_total{fleet_kernel="node-1/probe"} `,
	}
	scraped, body := false, ""
	for !scraped {
		// A scrape after each line of the live view, until the agents'
		// reports have reached the parent.
		select {
		case <-stderr.lines:
		case <-ran:
			t.Fatalf("run ended before a scrape showed every series of %q; the last:\n%s\nstderr:\n%s", series, body, stderr)
		}
		body = scrape(t, url)
		scraped = !slices.ContainsFunc(series, func(s string) bool { return !strings.Contains(body, s) })
	}

	<-ran
	if code != 0 {
		t.Fatalf("run: exit code %d, want 0; stderr:\n%s\nstdout:\n%s", code, stderr, &stdout)
	}
	var s summary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatalf("decode the summary: %v\n%s", err, &stdout)
	}
	if !s.Reconciled || len(s.Problems) > 0 {
		t.Errorf("got reconciled %v, problems %q; want reconciled", s.Reconciled, s.Problems)
	}
	if len(s.Nodes) != 2 {
		t.Fatalf("got %d nodes in the summary, want 2", len(s.Nodes))
	}
	var blocked uint64
	for i, n := range s.Nodes {
		k, st := n.Kernel, n.Stream
		t.Logf("%s: kernel %+v, stream %+v, restarts %d, forward %+v", n.Node, k, st, n.Restarts, n.Forward)
		if got, want := k.Events, st.Records+k.RingFull; got != want {
			t.Errorf("%s: written by the kernel %d, want in the stream %d + ring full %d", n.Node, got, st.Records, k.RingFull)
		}
		if st.Records == 0 || st.Duplicates != 0 || st.Gaps != 0 || st.Rings != 1 || len(n.Problems) > 0 {
			t.Errorf("%s: got records %d, duplicates %d, gaps %d, rings %d, problems %q; want records, no duplicate, no gap, one ring",
				n.Node, st.Records, st.Duplicates, st.Gaps, st.Rings, n.Problems)
		}
		if want := map[bool]int{true: 1, false: 0}[i == 0]; n.Restarts != want {
			t.Errorf("%s: got %d restarts, want %d", n.Node, n.Restarts, want)
		}
		if fw := n.Forward; fw["acked"] != fw["delivered"] || fw["delivered"] == 0 {
			t.Errorf("%s: the last forwarder acknowledged %d records to the ring of %d delivered, want all", n.Node, fw["acked"], fw["delivered"])
		}
		blocked += st.Blocked
	}
	if blocked == 0 {
		t.Errorf("got no event of the blocked command %q in the stream, want some: the load runs it while it is blocked", s.Blocked)
	}
	for _, note := range []string{"node-1: agent killed (SIGKILL)", "node-1: agent restarted on its pins", `bucket blocked: put "date"`, `bucket blocked: deleted "date"`} {
		if !strings.Contains(stderr.String(), note) {
			t.Errorf("stderr does not say %q:\n%s", note, stderr)
		}
	}
	if left := pinned(t, pins); len(left) > 0 {
		t.Errorf("got %q left in the pin directory, want nothing", left)
	}
}

// TestStopEarly: a Ctrl-C before the run has started (stop done) still
// starts every node and stops it gracefully, and the figures reconcile; a
// second one (abort done too) ends it with exit code 1, the abort's cause
// and no summary. Either way nothing is left behind.
func TestStopEarly(t *testing.T) {
	testenv.RequireBPF(t)
	cancelled := func() context.Context {
		ctx, cancel := context.WithCancelCause(t.Context())
		cancel(errors.New("Ctrl-C"))
		return ctx
	}
	for _, tc := range []struct {
		name        string
		stop, abort context.Context
		code        int
		stdout      string
		stderr      string
	}{
		{"stopped", cancelled(), t.Context(), exitOK, "the figures reconcile", ""},
		{"aborted", cancelled(), cancelled(), exitFailed, "", "fleet: Ctrl-C\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pins := testenv.BPFFS(t)
			var stdout, stderr bytes.Buffer
			code := run(tc.stop, tc.abort, []string{"-nodes", "2", "-pins", pins}, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stdout.String(), tc.stdout) || (tc.stdout == "") != (stdout.Len() == 0) ||
				!strings.HasSuffix(stderr.String(), tc.stderr) {
				t.Errorf("got exit code %d, stdout:\n%s\nstderr:\n%s\nwant %d, stdout with %q, stderr ending %q", code, &stdout, &stderr, tc.code, tc.stdout, tc.stderr)
			}
			if left := pinned(t, pins); len(left) > 0 {
				t.Errorf("got %q left in the pin directory, want nothing", left)
			}
		})
	}
}

// TestFlags: bad flags are refused with exit code 2 and a line saying why.
func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-nodes", "0"}, "-nodes 0: want 1 to 64"},
		{[]string{"-duration", "-1s"}, "must not be negative"},
		{[]string{"-ring", "5000"}, "-ring 5000: want a power of two"},
		{[]string{"-block", "a-name-longer-than-15"}, `-block: command name "a-name-longer-than-15": want 1 to 15 bytes`},
		{[]string{"-metrics", "9100"}, "-metrics: address 9100: missing port in address"},
		{[]string{"extra"}, "unexpected arguments: extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), t.Context(), tc.args, &stdout, &stderr); code != exitUsage {
			t.Errorf("run %q: got exit code %d, want %d", tc.args, code, exitUsage)
		}
		if got := stderr.String(); !strings.Contains(got, tc.want) || strings.Count(got, "\n") != 1 {
			t.Errorf("run %q: got stderr %q, want one line containing %q", tc.args, got, tc.want)
		}
	}
}

// scrape GETs url and returns the body.
func scrape(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	return string(b)
}

// pinned lists what dir, a bpffs, holds besides the kernel's own files.
func pinned(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range ents {
		if !slices.Contains(preloaded, e.Name()) {
			left = append(left, e.Name())
		}
	}
	return left
}

// watchWriter keeps what the program writes on stderr, sends the URL of
// its "serving metrics at" line on url, and signals lines for every line
// of the live view.
type watchWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	url   chan string
	lines chan struct{}
}

func newWatchWriter() *watchWriter {
	return &watchWriter{url: make(chan string, 1), lines: make(chan struct{}, 1)}
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for line := range strings.Lines(string(p)) {
		if u, ok := strings.CutPrefix(line, "fleet: serving metrics at "); ok {
			w.url <- strings.TrimSpace(u)
		}
		if strings.HasPrefix(line, "t=") {
			select {
			case w.lines <- struct{}{}:
			default:
			}
		}
	}
	return w.buf.Write(p)
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
