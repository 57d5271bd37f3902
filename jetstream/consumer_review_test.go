package jetstream_test

// Review of issue 19 (Consumer, Publisher codecs). Each test here either
// fails on the code it was written against, showing a defect, or passes and
// documents a hazard that was checked.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	bj "github.com/bpfchan/bpfchan/jetstream"
	"github.com/bpfchan/bpfchan/jetstream/internal/natstest"
)

// TestReviewConsumerAckPolicy: NewConsumer documents that the consumer's
// AckPolicy "must be explicit" but does not check it. On an AckAll
// consumer, acknowledging a record acknowledges every earlier message too,
// so a record the receiver never acknowledged is never delivered again:
// at-least-once is lost without a word. On an AckNone consumer, Ack and
// Term do nothing and nothing is ever redelivered. CachedInfo has the
// policy: construction should refuse both (ErrOption, naming the consumer).
func TestReviewConsumerAckPolicy(t *testing.T) {
	for _, policy := range []jetstream.AckPolicy{jetstream.AckAllPolicy, jetstream.AckNonePolicy} {
		t.Run(policy.String(), func(t *testing.T) {
			s := natstest.Start(t)
			_, j := natstest.Connect(t, s)
			createStream(t, j)
			for i := range 2 {
				if _, err := j.Publish(t.Context(), "ev.a", encode(t, event{Seq: uint64(i)})); err != nil {
					t.Fatal(err)
				}
			}
			c, err := j.CreateConsumer(t.Context(), "EV", jetstream.ConsumerConfig{Durable: "reader", AckPolicy: policy, AckWait: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			k, err := bj.NewConsumer[event](t.Context(), c)
			if err != nil {
				if !errors.Is(err, bj.ErrOption) || !strings.Contains(err.Error(), `"reader"`) {
					t.Errorf("got %v, want an error matching ErrOption naming the consumer", err)
				}
				return
			}
			t.Errorf("NewConsumer took a consumer with %v acks, want an error matching ErrOption", policy)
			if policy != jetstream.AckAllPolicy {
				closeConsumer(t, k)
				return
			}
			// Show what it costs: ack the second record only.
			first, second := recv(t, k), recv(t, k)
			if err := second.AckSync(t.Context()); err != nil {
				t.Fatal(err)
			}
			info, err := c.Info(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if info.NumAckPending == 0 {
				t.Errorf("record %d was never acknowledged, yet the server holds no ack pending (ack floor %d): it will never be delivered again",
					first.Value.Seq, info.AckFloor.Stream)
			}
			closeConsumer(t, k)
		})
	}
}

// closeConsumer closes k while draining C().
func closeConsumer[T any](t *testing.T, k *bj.Consumer[T]) {
	t.Helper()
	go func() {
		for range k.C() {
		}
	}()
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
}

// touchy is a value whose own binary methods panic on some input, as
// hand-written ones do on short or unexpected bytes: MarshalBinary on a
// zero value, UnmarshalBinary on an empty slice.
type touchy struct{ b byte }

func (v touchy) MarshalBinary() ([]byte, error) {
	if v.b == 0 {
		panic("touchy: zero")
	}
	return []byte{v.b}, nil
}

func (v *touchy) UnmarshalBinary(b []byte) error {
	v.b = b[0]
	return nil
}

// The children of TestReviewMarshalerPanics.
const (
	reviewPanicEnv    = "BPFCHAN_REVIEW_PANIC_CHILD"
	reviewPanicURLEnv = "BPFCHAN_REVIEW_PANIC_URL"
)

func init() {
	if mode := os.Getenv(reviewPanicEnv); mode != "" {
		os.Exit(reviewPanicChild(mode))
	}
}

// reviewPanicChild runs one handle over a value whose binary methods panic
// and reports how the handle took it: "ok: ..." and 0 when the panic became
// an error or a counted decode error; a crash otherwise.
func reviewPanicChild(mode string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, err := nats.Connect(os.Getenv(reviewPanicURLEnv))
	if err != nil {
		fmt.Println("child:", err)
		return 1
	}
	defer nc.Close()
	j, err := jetstream.New(nc)
	if err != nil {
		fmt.Println("child:", err)
		return 1
	}
	switch mode {
	case "consumer":
		// The stream holds an empty message, then a good one.
		c, err := j.Consumer(ctx, "EV", "reader")
		if err != nil {
			fmt.Println("child:", err)
			return 1
		}
		k, err := bj.NewConsumer[touchy](ctx, c)
		if err != nil {
			fmt.Println("child:", err)
			return 1
		}
		select {
		case m, ok := <-k.C():
			if ok && k.Stats().DecodeErrors == 1 {
				fmt.Printf("ok: the empty message counted, the next one delivered (%d)\n", m.Value.b)
				return 0
			}
		case <-ctx.Done():
		}
		if err := k.Wait(); errors.Is(err, bj.ErrPanic) {
			fmt.Println("ok: stopped with", err)
			return 0
		}
		fmt.Println("child: no panic error:", k.Stats())
		return 1
	case "publisher":
		p, err := bj.NewPublisher[touchy](ctx, j, "ev.pub")
		if err != nil {
			fmt.Println("child:", err)
			return 1
		}
		select {
		case p.C() <- touchy{}:
		case <-p.Done():
		}
		if err := p.Close(); errors.Is(err, bj.ErrPanic) || p.Stats().DecodeErrors == 1 {
			fmt.Println("ok: the value's panic became", err)
			return 0
		}
		fmt.Println("child: no panic error:", p.Stats())
		return 1
	}
	return 1
}

// TestReviewMarshalerPanics: the module's codec (codec.go, a copy of the
// core's internal/codec) calls a T's MarshalBinary and UnmarshalBinary
// without recover, where the core's codec turns their panics into ErrPanic
// (internal/codec: unmarshal, marshal, catch). WithDecoder and WithEncoder
// functions are guarded (guard), T's own methods are not. So a message
// from the network whose bytes make T.UnmarshalBinary panic kills the
// whole process from the Consumer's goroutine ("No library goroutine may
// panic on data"); the same holds for a Mirror's keys and values and for
// the Publisher's and Forwarder's encoding. Each handle runs in a child
// process, which must not crash.
func TestReviewMarshalerPanics(t *testing.T) {
	l := natstest.StartLoopback(t)
	_, j := l.Connect()
	createStream(t, j)
	if _, err := j.Publish(t.Context(), "ev.in", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Publish(t.Context(), "ev.in", []byte{7}); err != nil {
		t.Fatal(err)
	}
	if _, err := j.CreateConsumer(t.Context(), "EV", jetstream.ConsumerConfig{Durable: "reader", FilterSubject: "ev.in", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"consumer", "publisher"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0])
			cmd.Env = append(os.Environ(), reviewPanicEnv+"="+mode, reviewPanicURLEnv+"="+l.URL())
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.HasPrefix(string(out), "ok:") {
				t.Errorf("%s child: got %v, want it to survive; it said:\n%s", mode, err, firstLines(string(out), 6))
				return
			}
			t.Logf("%s child: %s", mode, strings.TrimSpace(string(out)))
		})
	}
}

// firstLines returns the first n lines of s.
func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// TestReviewConsumerServerRestart (hazard checked, passes): the server
// restarts on its store under a running Consumer; records published after
// the restart arrive (nats.go's pull iterator issues a new pull on
// reconnection), none acknowledged before it comes again. The test
// list has no Consumer restart test; this is one.
func TestReviewConsumerServerRestart(t *testing.T) {
	l := natstest.StartLoopback(t)
	_, j := l.Connect()
	createStream(t, j)
	publish := func(i int) {
		for {
			_, err := j.Publish(t.Context(), "ev.a", encode(t, event{Seq: uint64(i)}), jetstream.WithRetryAttempts(100))
			if err == nil {
				return
			}
			if t.Context().Err() != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
		}
	}
	for i := range 5 {
		publish(i)
	}
	c, err := j.CreateConsumer(t.Context(), "EV", jetstream.ConsumerConfig{Durable: "reader", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	k, err := bj.NewConsumer[event](t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	for want := range uint64(10) {
		if want == 5 {
			l.Stop()
			l.Start()
			for i := 5; i < 10; i++ {
				publish(i)
			}
		}
		m := recv(t, k)
		if m.Value.Seq != want || m.Delivered != 1 {
			t.Fatalf("got record %d delivered %d times, want %d once", m.Value.Seq, m.Delivered, want)
		}
		if err := m.AckSync(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	closeConsumer(t, k)
	st := k.Stats()
	identity(t, "consumer", st.Received, st.Delivered, st.Dropped, st.DecodeErrors)
}
