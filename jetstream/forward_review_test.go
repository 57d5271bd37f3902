package jetstream_test

// Review of issue 19 (Forward). Each test here either fails on the code it
// was written against, showing a defect, or passes and documents a hazard
// that was checked.

import (
	"bufio"
	"context"
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

// flushWithin is Flush bounded by a generous liveness limit: a Forwarder
// that has everything it needs returns at once; one that has stalled would
// never return. Each Flush call is itself an event that wakes the loop for
// one more round, so a stall shows once a round meets the bound again with
// nothing in flight (the cases below have at least twice the bound of such
// records in a row); without Flush calls, one is enough.
func flushWithin(t *testing.T, f *bj.Forwarder) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	return f.Flush(ctx)
}

// TestReviewForwardDoneSlotsStall: a record that needs no message (skipped
// because the stream holds it, or refused by the encoder) still takes a
// place among the WithMaxPending messages in flight. When a batch holds
// maxPending such records in a row with nothing in flight, publishHeld stops
// at the bound, advance releases them, and the loop waits for an event that
// never comes (no PubAck is due, and it takes no new batch while it holds
// one): the Forwarder stalls, and Flush never returns.
//
// The restart case is the realistic one: an agent killed after its last
// messages were stored and before the ring was acknowledged restarts with
// as many records to skip; with WithMaxPending(1) (one message in flight, to
// keep the stream in ring order) a single skipped record is enough. With
// the default bound (1024) a batch larger than it (WithBatch raised for
// packed throughput) stalls the same way.
func TestReviewForwardDoneSlotsStall(t *testing.T) {
	t.Run("encoder refuses records, one in flight", func(t *testing.T) {
		rb, p, j, _ := fixture(t, 1<<16, 16)
		src := ackSource[rec16](t, rb, pump.WithBatch(64, 0))
		enc := func(r rec16) ([]byte, error) {
			if r.Seq%5 == 0 {
				return nil, errTest
			}
			return encode16(r), nil
		}
		f := forward(t, t.Context(), src, j, "fwd.refuse", bj.WithMaxPending(1), bj.WithEncoder(enc))
		produce(t, p, 20)
		if err := flushWithin(t, f); err != nil {
			t.Errorf("Flush: got %v, want nil (stats %+v)", err, f.Stats())
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if got := f.Stats(); got.Received != 20 || got.DecodeErrors != 4 || got.Delivered != 16 {
			t.Errorf("got stats %+v, want 20 received, 4 decode errors, 16 delivered", got)
		}
	})

	for _, tc := range []struct {
		name       string
		stored     int // records the previous run left in the stream, unacknowledged
		perMsg     int // records per message of the previous run (1: not packed)
		batch      int // the resuming source's batch size
		maxPending int // 0: the default
	}{
		{"restart, one in flight", 3, 1, 64, 1},
		{"restart, four in flight", 30, 1, 64, 4},
		{"restart packed, default in flight, large batches", 2100, 16, 4096, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 2500
			rb, p, j, _ := fixture(t, 1<<16, 16)
			produce(t, p, n)
			prev := previousRun{packed: tc.perMsg > 1}
			for i := 0; i < tc.stored; i += tc.perMsg {
				prev.msgs = append(prev.msgs, [2]int{i, min(i+tc.perMsg, tc.stored) - 1})
			}
			publishPrevious(t, j, ackSource[rec16](t, rb), n, "fwd.n1", "n1", prev)

			src := ackSource[rec16](t, rb, pump.WithBatch(tc.batch, 0))
			opts := []bj.Option{bj.WithNode("n1")}
			if tc.maxPending > 0 {
				opts = append(opts, bj.WithMaxPending(tc.maxPending))
			}
			if prev.packed {
				opts = append(opts, bj.WithPacked())
			}
			f := forward(t, t.Context(), src, j, "fwd.n1", opts...)
			if err := flushWithin(t, f); err != nil {
				t.Errorf("Flush: got %v, want nil (stats %+v)", err, f.Stats())
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if got := f.Stats(); got.Skipped != uint64(tc.stored) || got.Received != n || got.Delivered != n {
				t.Errorf("got stats %+v, want %d received and delivered, %d skipped", got, n, tc.stored)
			}
		})
	}
}

// TestReviewForwardStreamMaxMsgSize: Forward cuts packed messages at the
// connection's maximum payload but ignores the stream's MaxMsgSize. The
// server refuses a larger message with a 400, which the retry policy takes
// as permanent: the Forwarder stops. Its records stay in the ring, so every
// restart packs the same batch and stops again: the ring is wedged until
// someone changes the stream. Forward could cut at min(max payload, the
// stream's MaxMsgSize) and count a record larger than that as it counts one
// larger than the payload.
func TestReviewForwardStreamMaxMsgSize(t *testing.T) {
	const n = 512
	rb := newRing(t, 1<<18)
	p := newProducer(t, rb, 64)
	s := natstest.Start(t)
	_, j := natstest.Connect(t, s)
	cfg := bj.ForwardStream("FWD", "fwd.>")
	cfg.MaxMsgSize = 4096 // 60 records of 64 bytes fit; a batch of 256 does not
	st, err := j.CreateStream(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	src := ackSource[rec64](t, rb, pump.WithBatch(256, 0))
	f := forward(t, t.Context(), src, j, "fwd.big", bj.WithPacked())
	produce(t, p, n)
	if err := flushWithin(t, f); err != nil {
		t.Errorf("Flush: got %v, want nil: a packed message should fit the stream's MaxMsgSize", err)
	}
	_ = f.Close()
	if got := len(streamRecords(t, st)); got != n {
		t.Errorf("got %d records in the stream, want %d", got, n)
	}
}

// The child of TestReviewForwardKilledPacked: this test binary run again
// with these variables set (dispatched by init, before TestMain).
const (
	reviewKillEnv     = "BPFCHAN_REVIEW_KILL_PIN"
	reviewKillURLEnv  = "BPFCHAN_REVIEW_KILL_URL"
	reviewKillSubjEnv = "BPFCHAN_REVIEW_KILL_SUBJECT"
	reviewKillMid     = 3000
)

func init() {
	if pin := os.Getenv(reviewKillEnv); pin != "" {
		os.Exit(reviewKillChild(pin))
	}
}

// reviewKillChild forwards the pinned ring packed, 16 records a batch, says
// "mid" when it encodes record reviewKillMid and goes on until it is killed.
func reviewKillChild(pin string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "review kill child:", err)
		return 1
	}
	ctx := context.Background()
	m, err := ebpf.LoadPinnedMap(pin, nil)
	if err != nil {
		return fail(err)
	}
	src, err := pump.RingBufAcked[rec16](ctx, m, pump.WithBatch(16, 0))
	if err != nil {
		return fail(err)
	}
	nc, err := nats.Connect(os.Getenv(reviewKillURLEnv))
	if err != nil {
		return fail(err)
	}
	j, err := jetstream.New(nc)
	if err != nil {
		return fail(err)
	}
	enc := func(r rec16) ([]byte, error) {
		if r.Seq == reviewKillMid {
			fmt.Println("mid")
		}
		return encode16(r), nil
	}
	f, err := bj.Forward(ctx, src, j, os.Getenv(reviewKillSubjEnv), bj.WithEncoder(enc), bj.WithPacked(), bj.WithNode("n1"))
	if err != nil {
		return fail(err)
	}
	return fail(f.Wait())
}

// TestReviewForwardKilledPacked (hazard checked, passes): a child forwarding
// a pinned ring with packed messages is SIGKILLed mid-stream. At the kill,
// every record below the ring's acknowledged position is in the stream
// (the ring is never acknowledged ahead of the stream). A new Forwarder,
// packing other boundaries (batches of 7), resumes within the duplicate
// window and after it; the stream then holds every record exactly once:
// the start-up read, not the message IDs, is what keeps packed copies out.
func TestReviewForwardKilledPacked(t *testing.T) {
	const n1, n2 = 8000, 2000
	for _, window := range []time.Duration{time.Hour, 300 * time.Millisecond} {
		t.Run("window "+window.String(), func(t *testing.T) {
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
			cfg.Duplicates = window
			st, err := j.CreateStream(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			produce(t, p, n1)

			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), reviewKillEnv+"="+pin, reviewKillURLEnv+"="+l.URL(), reviewKillSubjEnv+"=fwd.n1")
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
				t.Fatalf("the child never reached record %d: %v", reviewKillMid, sc.Err())
			}

			// Records are 24 bytes of ring each (8 of header): record i is
			// at 24*i. Every acknowledged one must be in the stream now.
			acked, _ := rbPositions(t, rb)
			in := make(map[uint64]bool)
			for _, r := range streamRecordsOn(t, st, "fwd.n1") {
				in[r.seq] = true
			}
			for i := uint64(0); 24*i < acked; i++ {
				if !in[i] {
					t.Fatalf("record %d is acknowledged in the ring (acked up to %d) but not in the stream", i, acked)
				}
			}
			t.Logf("killed with the ring acknowledged up to record %d; the stream held %d records", acked/24, len(in))

			if window < time.Minute {
				waitWindow(t, j, window)
			}
			produce(t, p, n2)
			src := ackSource[rec16](t, rb, pump.WithBatch(7, 0))
			f := forward(t, t.Context(), src, j, "fwd.n1", bj.WithPacked(), bj.WithNode("n1"))
			if err := flushWithin(t, f); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			checkOnce(t, streamRecordsOn(t, st, "fwd.n1"), n1+n2, false)
			t.Logf("the resuming forwarder: %+v", checkStats(t, f))
		})
	}
}

// TestReviewForwardReadSource (hazard checked, passes): Forward adopts a
// source whose C() the caller already read from. Its cumulative Ack then
// releases the records the caller took, which never reach the stream:
// they are lost, silently (no counter of the Forwarder or the source says
// so). Forward's documentation says it owns src "from then on" but not
// that src must be unread; Forward cannot tell a batch sitting in C()'s
// buffer from one a caller took. The fix is a sentence in Forward's doc
// (src must be fresh: no batch taken from C()), or a check in Forward that
// the first record it receives is at src's acknowledged position.
func TestReviewForwardReadSource(t *testing.T) {
	rb, p, j, st := fixture(t, 1<<16, 16)
	src := ackSource[rec16](t, rb)
	produce(t, p, 5)
	b := <-src.C() // the caller peeks at a batch and does not acknowledge it
	f := forward(t, t.Context(), src, j, "fwd.read")
	produce(t, p, 5)
	if err := flushWithin(t, f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	acked, produced := rbPositions(t, rb)
	got := len(streamRecordsOn(t, st, "fwd.read"))
	if acked != produced || got != 10-len(b) {
		t.Errorf("got ring acked %d of %d and %d records in the stream", acked, produced, got)
	}
	t.Logf("hazard: the ring released all 10 records; the stream holds %d: the %d the caller took are lost", got, len(b))
}

// TestReviewPublisherSubject (hazard checked): Forward refuses a subject
// with wildcards; NewPublisher takes one, finds the stream whose filter
// overlaps it, and publishes messages whose subject is the literal
// wildcard, which no consumer filter on a real subject will match.
func TestReviewPublisherSubject(t *testing.T) {
	s := natstest.Start(t)
	_, j := natstest.Connect(t, s)
	st := createStream(t, j)
	p, err := bj.NewPublisher[event](t.Context(), j, "ev.*")
	if err != nil {
		t.Logf("NewPublisher refuses a wildcard subject: %v", err)
		return
	}
	p.C() <- event{Seq: 1}
	if err := p.Close(); err != nil {
		t.Logf("Close: %v", err)
	}
	var subjects []string
	for _, m := range streamMsgs(t, st) {
		subjects = append(subjects, strconv.Quote(m.Subject))
	}
	t.Errorf("NewPublisher took the wildcard subject \"ev.*\" (stats %+v; the stream holds messages on %v): want an error matching ErrOption, as Forward gives", p.Stats(), subjects)
}
