package jetstream_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
// childEnv naming the pinned ring, the server and the subject in
// childURLEnv and childSubjectEnv, and childPackedEnv set to pack.
const (
	childEnv        = "BPFCHAN_FORWARD_CHILD"
	childURLEnv     = "BPFCHAN_FORWARD_URL"
	childSubjectEnv = "BPFCHAN_FORWARD_SUBJECT"
	childPackedEnv  = "BPFCHAN_FORWARD_PACKED"
	childMid        = 3000 // the record at which the child says "mid"
)

// encode16 is the encoding of a rec16 that the default codec gives, done
// by hand so that a test can watch the Forwarder's progress.
func encode16(r rec16) []byte {
	return binary.NativeEndian.AppendUint64(binary.NativeEndian.AppendUint64(make([]byte, 0, 16), r.Seq), 0)
}

// TestForwardKilled: a child process forwarding from a pinned ring is
// SIGKILLed mid-stream. At the kill every record below the ring's
// acknowledged position is in the stream (the ring is never acknowledged
// ahead of the stream). A new Forwarder on the ring resumes, within the
// duplicate window or after it, and the stream holds every record exactly
// once. Packed, the resuming Forwarder cuts other boundaries (batches of
// 7) than the child (16): the start-up read, not the message IDs, is what
// keeps packed copies out.
func TestForwardKilled(t *testing.T) {
	const n1, n2 = 8000, 2000
	for _, tc := range []struct {
		name    string
		packed  bool
		window  time.Duration
		ordered bool // the stream holds the records in ring order
	}{
		{"one message per record", false, time.Hour, true},
		{"packed", true, time.Hour, false},
		{"packed, resumed after the window", true, 300 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := testenv.BPFFS(t)
			rb := newRing(t, 1<<20)
			pin := filepath.Join(dir, "ring")
			if err := rb.Pin(pin); err != nil {
				t.Fatal(err)
			}
			p := newProducer(t, rb, 16)
			l := natstest.StartLoopback(t)
			_, j := l.Connect()
			cfg := bj.ForwardStream("FWD", "fwd.>")
			cfg.Duplicates = tc.window
			st, err := j.CreateStream(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			produce(t, p, n1)

			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), childEnv+"="+pin, childURLEnv+"="+l.URL(), childSubjectEnv+"=fwd.n1",
				childPackedEnv+"="+strconv.FormatBool(tc.packed))
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

			// Records are 24 bytes of ring each (8 of header): record i is
			// at 24*i. Every acknowledged one must be in the stream now.
			acked, produced := rbPositions(t, rb)
			in := make(map[uint64]bool)
			for _, r := range streamRecordsOn(t, st, "fwd.n1") {
				in[r.seq] = true
			}
			for i := uint64(0); 24*i < acked; i++ {
				if !in[i] {
					t.Fatalf("record %d is acknowledged in the ring (acked up to %d) but not in the stream", i, acked)
				}
			}
			t.Logf("killed with the ring acknowledged up to %d of %d; the stream held %d records", acked, produced, len(in))

			if tc.window < time.Minute {
				waitWindow(t, j, tc.window)
			}
			produce(t, p, n2)
			opts := []bj.Option{bj.WithNode("n1")}
			var srcOpts []pump.Option
			if tc.packed {
				opts = append(opts, bj.WithPacked())
				srcOpts = append(srcOpts, pump.WithBatch(7, 0))
			}
			f := forward(t, t.Context(), ackSource[rec16](t, rb, srcOpts...), j, "fwd.n1", opts...)
			if err := flushWithin(t, f); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			checkOnce(t, streamRecordsOn(t, st, "fwd.n1"), n1+n2, tc.ordered)
			t.Logf("the resuming forwarder: %+v", checkStats(t, f))
		})
	}
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
// ring as node n1 (packed: 16 records a batch, one message each), prints
// "mid" when it encodes record childMid, and goes on until it is killed.
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
	packed := os.Getenv(childPackedEnv) == "true"
	var srcOpts []pump.Option
	if packed {
		srcOpts = append(srcOpts, pump.WithBatch(16, 0))
	}
	src, err := pump.RingBufAcked[rec16](ctx, m, srcOpts...)
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
	opts := []bj.Option{bj.WithEncoder(enc), bj.WithNode("n1")}
	if packed {
		opts = append(opts, bj.WithPacked())
	}
	f, err := bj.Forward(ctx, src, j, os.Getenv(childSubjectEnv), opts...)
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
