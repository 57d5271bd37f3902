package jetstream_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bpfchan/bpfchan/pump"

	bj "github.com/bpfchan/bpfchan/jetstream"
	"github.com/bpfchan/bpfchan/jetstream/internal/natstest"
	"github.com/bpfchan/bpfchan/jetstream/internal/testenv"
)

// The child of TestForwardKilled is this test binary run again with
// childEnv naming the pinned ring, and the server and the subject in
// childURLEnv and childSubjectEnv.
const (
	childEnv        = "BPFCHAN_FORWARD_CHILD"
	childURLEnv     = "BPFCHAN_FORWARD_URL"
	childSubjectEnv = "BPFCHAN_FORWARD_SUBJECT"
	childMid        = 3000 // the record at which the child says "mid"
)

// encode16 is the encoding of a rec16 that the default codec gives, done
// by hand so that a test can watch the Forwarder's progress.
func encode16(r rec16) []byte {
	return binary.NativeEndian.AppendUint64(binary.NativeEndian.AppendUint64(make([]byte, 0, 16), r.Seq), 0)
}

// TestForwardKilled: a child process forwarding from a pinned ring is
// SIGKILLed mid-stream; a new Forwarder on the ring resumes, and the
// stream holds every record exactly once, in ring order.
func TestForwardKilled(t *testing.T) {
	const n1, n2 = 8000, 2000
	dir := testenv.BPFFS(t)
	rb := newRing(t, 1<<20)
	pin := filepath.Join(dir, "ring")
	if err := rb.Pin(pin); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, rb, 16)
	l := natstest.StartLoopback(t)
	_, j := l.Connect()
	st := forwardStream(t, j)
	produce(t, p, n1)

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+pin, childURLEnv+"="+l.URL(), childSubjectEnv+"=fwd.killed")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	mid := false
	for !mid && sc.Scan() {
		mid = sc.Text() == "mid"
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if !mid {
		t.Fatalf("the child never reached record %d: %v", childMid, sc.Err())
	}
	acked, produced := rbPositions(t, rb)
	t.Logf("the child was killed with the ring acknowledged up to %d of %d", acked, produced)

	produce(t, p, n2)
	src := ackSource[rec16](t, rb)
	f := forward(t, t.Context(), src, j, "fwd.killed")
	if err := f.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	checkOnce(t, streamRecords(t, st), n1+n2, true)
	t.Logf("the resuming forwarder: %+v", checkStats(t, f))
}

// rbPositions reads the ring's positions through a short-lived source.
func rbPositions(t *testing.T, rb *ebpf.Map) (acked, produced uint64) {
	t.Helper()
	src, err := pump.RingBufAcked[rec16](t.Context(), rb)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	return src.Positions()
}

// forwardChild is the child of TestForwardKilled: it forwards the pinned
// ring, prints "mid" when it encodes record childMid, and goes on until it
// is killed.
func forwardChild(pin string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "forward child:", err)
		return 1
	}
	ctx := context.Background()
	m, err := ebpf.LoadPinnedMap(pin, nil)
	if err != nil {
		return fail(err)
	}
	src, err := pump.RingBufAcked[rec16](ctx, m)
	if err != nil {
		return fail(err)
	}
	nc, err := nats.Connect(os.Getenv(childURLEnv))
	if err != nil {
		return fail(err)
	}
	j, err := jetstream.New(nc)
	if err != nil {
		return fail(err)
	}
	enc := func(r rec16) ([]byte, error) {
		if r.Seq == childMid {
			fmt.Println("mid")
		}
		return encode16(r), nil
	}
	f, err := bj.Forward(ctx, src, j, os.Getenv(childSubjectEnv), bj.WithEncoder(enc))
	if err != nil {
		return fail(err)
	}
	return fail(f.Wait()) // until SIGKILL
}

// TestForwardServerRestart: the server stops and starts again on its store
// while records are in flight; the Forwarder waits, sends again what was
// not acknowledged, and the stream holds every record exactly once.
func TestForwardServerRestart(t *testing.T) {
	const n, at = 6000, 2000
	for _, packed := range []bool{false, true} {
		t.Run(fmt.Sprintf("packed=%v", packed), func(t *testing.T) {
			rb := newRing(t, 1<<18)
			p := newProducer(t, rb, 16)
			l := natstest.StartLoopback(t)
			_, j := l.Connect()
			forwardStream(t, j)
			reached := make(chan struct{})
			enc := func(r rec16) ([]byte, error) {
				if r.Seq == at {
					close(reached)
				}
				return encode16(r), nil
			}
			opts := []bj.Option{bj.WithEncoder(enc), bj.WithAckWait(500 * time.Millisecond), bj.WithRetry(10*time.Millisecond, 200*time.Millisecond)}
			if packed {
				opts = append(opts, bj.WithPacked())
			}
			src := ackSource[rec16](t, rb, pump.WithBatch(16, 0))
			f := forward(t, t.Context(), src, j, "fwd.restart", opts...)
			produce(t, p, n)
			<-reached
			l.Stop()
			l.Start()
			if err := f.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			st := checkStats(t, f)
			if st.Delivered != n || st.Acked != n {
				t.Errorf("got stats %+v, want %d delivered and acked", st, n)
			}
			_, j2 := l.Connect()
			stream, err := j2.Stream(t.Context(), "FWD")
			if err != nil {
				t.Fatal(err)
			}
			// Retries may put a message after later ones: no order check.
			checkOnce(t, streamRecords(t, stream), n, false)
			t.Logf("stats %+v", st)
		})
	}
}
