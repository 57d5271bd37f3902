package jetstream_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	bj "github.com/bpfchan/bpfchan/jetstream"
	"github.com/bpfchan/bpfchan/jetstream/internal/natstest"
)

func TestPublisherDelivers(t *testing.T) {
	const n = 2000
	s := natstest.Start(t)
	_, j := natstest.Connect(t, s)
	st := createStream(t, j)
	p, err := bj.NewPublisher[event](t.Context(), j, "ev.node1", bj.WithNode("node1"), bj.WithMaxPending(64))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Stream(), "EV"; got != want {
		t.Errorf("got stream %q, want %q", got, want)
	}
	for i := range n {
		p.C() <- event{Seq: uint64(i), PID: 7, CPU: uint32(i % 2)}
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got, want := p.Stats(), (bj.Stats{Received: n, Delivered: n}); got != want {
		t.Errorf("got stats %+v, want %+v", got, want)
	}
	msgs := streamMsgs(t, st)
	if len(msgs) != n {
		t.Fatalf("got %d messages in the stream, want %d", len(msgs), n)
	}
	ids := make(map[string]bool)
	for i, m := range msgs {
		var e event
		if _, err := binary.Decode(m.Data, binary.NativeEndian, &e); err != nil || e != (event{Seq: uint64(i), PID: 7, CPU: uint32(i % 2)}) {
			t.Fatalf("message %d: got %+v (%v), want sequence %d", i, e, err, i)
		}
		if got := m.Header.Get(bj.HeaderNode); got != "node1" {
			t.Fatalf("message %d: got node %q, want node1", i, got)
		}
		id := m.Header.Get(jetstream.MsgIDHeader)
		if id == "" || ids[id] {
			t.Fatalf("message %d: got message ID %q, want a fresh one", i, id)
		}
		ids[id] = true
	}
}

// TestPublisherCloseChannel: closing C() ends the Publisher like Close,
// once every value is acknowledged.
func TestPublisherCloseChannel(t *testing.T) {
	s := natstest.Start(t)
	_, j := natstest.Connect(t, s)
	createStream(t, j)
	p, err := bj.NewPublisher[[]byte](t.Context(), j, "ev.raw", bj.WithBuffer(8))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		p.C() <- fmt.Appendf(nil, "value %d", i)
	}
	close(p.C())
	if err := p.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if got, want := p.Stats().Delivered, uint64(10); got != want {
		t.Errorf("got %d delivered, want %d", got, want)
	}
}

// TestPublisherEncoder: a value the encoder refuses is counted and
// skipped; the others are published.
func TestPublisherEncoder(t *testing.T) {
	s := natstest.Start(t)
	_, j := natstest.Connect(t, s)
	st := createStream(t, j)
	enc := func(v string) ([]byte, error) {
		if v == "" {
			return nil, errTest
		}
		return []byte(v), nil
	}
	p, err := bj.NewPublisher[string](t.Context(), j, "ev.text", bj.WithEncoder(enc))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"a", "", "b"} {
		p.C() <- v
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := p.Stats(), (bj.Stats{Received: 3, Delivered: 2, DecodeErrors: 1}); got != want {
		t.Errorf("got stats %+v, want %+v", got, want)
	}
	var got []string
	for _, m := range streamMsgs(t, st) {
		got = append(got, string(m.Data))
	}
	if strings.Join(got, ",") != "a,b" {
		t.Errorf("got messages %q, want a, b", got)
	}
}

// TestPublisherServerGone: with the server gone nothing is acknowledged;
// Close waits until ctx is cancelled, returns the cause, and every value
// is counted Dropped.
func TestPublisherServerGone(t *testing.T) {
	const n = 20
	l := natstest.StartLoopback(t)
	_, j := l.Connect()
	createStream(t, j)
	ctx, cancel := cancelled(t)
	p, err := bj.NewPublisher[event](ctx, j, "ev.gone")
	if err != nil {
		t.Fatal(err)
	}
	l.Stop()
	for i := range n {
		p.C() <- event{Seq: uint64(i)}
	}
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	cause := cancel()
	if err := <-closed; !errors.Is(err, cause) {
		t.Fatalf("Close: got %v, want the cause %v", err, cause)
	}
	if err := p.Wait(); !errors.Is(err, cause) {
		t.Errorf("Wait: got %v, want the cause %v", err, cause)
	}
	st := p.Stats()
	if st.Received != n || st.Delivered != 0 || st.Dropped != n {
		t.Errorf("got stats %+v, want %d received, 0 delivered, %d dropped", st, n, n)
	}
	identity(t, "publisher", st.Received, st.Delivered, st.Dropped, st.DecodeErrors)
}

// TestPublisherServerRestart: the server goes away mid-stream and comes
// back on its store; the Publisher sends again what was not acknowledged,
// with the same message IDs, and the stream holds every value exactly once.
func TestPublisherServerRestart(t *testing.T) {
	const n = 400
	l := natstest.StartLoopback(t)
	_, j := l.Connect()
	createStream(t, j)
	p, err := bj.NewPublisher[event](t.Context(), j, "ev.restart",
		bj.WithAckWait(300*time.Millisecond), bj.WithRetry(10*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if i == n/2 {
			l.Stop()
			l.Start()
		}
		p.C() <- event{Seq: uint64(i)}
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	st := p.Stats()
	if st.Received != n || st.Delivered != n || st.Dropped != 0 {
		t.Errorf("got stats %+v, want %d received and delivered", st, n)
	}
	_, j2 := l.Connect()
	stream, err := j2.Stream(t.Context(), "EV")
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[uint64]int)
	for _, m := range streamMsgs(t, stream) {
		var e event
		if _, err := binary.Decode(m.Data, binary.NativeEndian, &e); err != nil {
			t.Fatal(err)
		}
		seen[e.Seq]++
	}
	for i := range uint64(n) {
		if seen[i] != 1 {
			t.Errorf("value %d is %d times in the stream, want once", i, seen[i])
		}
	}
	t.Logf("retries %d, duplicates %d", st.Retries, st.Duplicates)
}

// TestPublisherConstructionErrors: what construction can check is an error that
// says what is wrong, and starts nothing.
func TestPublisherConstructionErrors(t *testing.T) {
	s := natstest.Start(t)
	_, j := natstest.Connect(t, s)
	createStream(t, j)
	for _, tc := range []struct {
		name    string
		subject string
		opts    []bj.Option
		is      error
		says    string
	}{
		{"no stream captures the subject", "other.x", nil, jetstream.ErrStreamNotFound, `"other.x"`},
		{"an option of another constructor", "ev.x", []bj.Option{bj.WithDecoder(func([]byte) (event, error) { return event{}, nil })}, bj.ErrOption, "WithDecoder"},
		{"an encoder for another type", "ev.x", []bj.Option{bj.WithEncoder(func(string) ([]byte, error) { return nil, nil })}, bj.ErrOption, "WithEncoder"},
		{"no pending publish allowed", "ev.x", []bj.Option{bj.WithMaxPending(0)}, bj.ErrOption, "WithMaxPending"},
		// A wildcard would be published as a literal subject no consumer
		// filter on real subjects matches.
		{"a wildcard subject", "ev.*", nil, bj.ErrOption, `"ev.*"`},
		{"an empty subject", "", nil, bj.ErrOption, `""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := bj.NewPublisher[event](t.Context(), j, tc.subject, tc.opts...)
			if err == nil {
				p.Close()
				t.Fatal("got no error")
			}
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("got %v, want an error matching %v that says %s", err, tc.is, tc.says)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("got a message of several lines: %q", err)
			}
		})
	}
}

// TestPublisherTooLarge: a value whose message would exceed the stream's
// MaxMsgSize (headers included) is counted in DecodeErrors and skipped;
// the Publisher goes on (the server would refuse it whatever happens).
func TestPublisherTooLarge(t *testing.T) {
	s := natstest.Start(t)
	_, j := natstest.Connect(t, s)
	st, err := j.CreateStream(t.Context(), jetstream.StreamConfig{Name: "EV", Subjects: []string{"ev.>"}, MaxMsgSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	p, err := bj.NewPublisher[[]byte](t.Context(), j, "ev.big")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{10, 1000, 20} { // 1000 bytes and the headers exceed 1024
		p.C() <- make([]byte, n)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got, want := p.Stats(), (bj.Stats{Received: 3, Delivered: 2, DecodeErrors: 1}); got != want {
		t.Errorf("got stats %+v, want %+v", got, want)
	}
	var sizes []int
	for _, m := range streamMsgs(t, st) {
		sizes = append(sizes, len(m.Data))
	}
	if fmt.Sprint(sizes) != "[10 20]" {
		t.Errorf("got messages of %v bytes, want [10 20]", sizes)
	}
}
