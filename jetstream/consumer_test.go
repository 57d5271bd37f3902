package jetstream_test

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	bj "github.com/bpfchan/bpfchan/jetstream"
	"github.com/bpfchan/bpfchan/jetstream/internal/natstest"
)

// newPullConsumer makes a durable pull consumer of the stream EV with
// explicit acks and the given ack wait.
func newPullConsumer(t *testing.T, j jetstream.JetStream, ackWait time.Duration) jetstream.Consumer {
	t.Helper()
	c, err := j.CreateConsumer(t.Context(), "EV", jetstream.ConsumerConfig{
		Durable: "reader", AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait,
	})
	if err != nil {
		t.Fatalf("create consumer: %v", err)
	}
	return c
}

func encode(t testing.TB, e event) []byte {
	t.Helper()
	b, err := binary.Append(nil, binary.NativeEndian, e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// recv takes the next record, failing the test when the consumer stops
// first.
func recv[T any](t *testing.T, k *bj.Consumer[T]) *bj.Msg[T] {
	t.Helper()
	select {
	case m, ok := <-k.C():
		if !ok {
			t.Fatalf("C() closed: %v", k.Wait())
		}
		return m
	case <-t.Context().Done():
		t.Fatal("test context done")
	}
	return nil
}

// TestConsumerRedelivery: a record not acknowledged comes again once the
// consumer's AckWait has passed, with Delivered 2; acknowledged, it does not.
func TestConsumerRedelivery(t *testing.T) {
	s := natstest.Start(t)
	_, j := natstest.Connect(t, s)
	createStream(t, j)
	msg := nats.NewMsg("ev.n1")
	msg.Data = encode(t, event{Seq: 41, PID: 1})
	msg.Header.Set(bj.HeaderNode, "n1")
	msg.Header.Set(bj.HeaderPos, "4096")
	if _, err := j.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	k, err := bj.NewConsumer[event](t.Context(), newPullConsumer(t, j, 300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	first := recv(t, k)
	want := bj.Msg[event]{Value: event{Seq: 41, PID: 1}, Subject: "ev.n1", Node: "n1", Pos: 4096, Seq: 1, Delivered: 1}
	if got := first; got.Value != want.Value || got.Subject != want.Subject || got.Node != want.Node ||
		got.Pos != want.Pos || got.Seq != want.Seq || got.Delivered != want.Delivered {
		t.Errorf("got %+v, want %+v", got, &want)
	}
	// Not acknowledged: the server delivers it again after AckWait.
	second := recv(t, k)
	if second.Seq != 1 || second.Delivered != 2 || second.Value != want.Value {
		t.Errorf("redelivery: got seq %d, delivered %d, value %+v; want seq 1, delivered 2, %+v", second.Seq, second.Delivered, second.Value, want.Value)
	}
	if err := second.AckSync(t.Context()); err != nil {
		t.Fatalf("AckSync: %v", err)
	}
	if err := second.Ack(); !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		t.Errorf("second Ack: got %v, want ErrMsgAlreadyAckd", err)
	}
	if err := k.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, ok := <-k.C(); ok {
		t.Error("got a record after Close, want C() closed")
	}
	st := k.Stats()
	if st.Received != 2 || st.Delivered != 2 || st.Acked != 1 {
		t.Errorf("got stats %+v, want 2 received and delivered, 1 acked", st)
	}
	identity(t, "consumer", st.Received, st.Delivered, st.Dropped, st.DecodeErrors)
}

// packed builds a packed payload by hand: each record prefixed by its
// length as a little-endian uint32.
func packed(recs ...[]byte) []byte {
	var b []byte
	for _, r := range recs {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(r)))
		b = append(b, r...)
	}
	return b
}

// TestConsumerPacked: a packed message built by hand is unpacked into its
// records; the record of the wrong size is counted, the others delivered,
// and the message is acknowledged on the server once both are.
func TestConsumerPacked(t *testing.T) {
	s := natstest.Start(t)
	_, j := natstest.Connect(t, s)
	createStream(t, j)
	msg := nats.NewMsg("ev.n2")
	msg.Data = packed(encode(t, event{Seq: 1}), []byte{1, 2, 3}, encode(t, event{Seq: 3}))
	msg.Header.Set(bj.HeaderNode, "n2")
	msg.Header.Set(bj.HeaderRing, "boot-1/7")
	msg.Header.Set(bj.HeaderPos, "100")
	msg.Header.Set(bj.HeaderCount, "3")
	msg.Header.Set(bj.HeaderLast, "164")
	if _, err := j.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	c := newPullConsumer(t, j, time.Hour)
	k, err := bj.NewConsumer[event](t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		seq   uint64
		index int
	}{{1, 0}, {3, 2}} {
		m := recv(t, k)
		if m.Value.Seq != want.seq || m.Index != want.index || m.Pos != 100 || m.Ring != "boot-1/7" || m.Node != "n2" {
			t.Errorf("got %+v, want value %d at index %d, pos 100, ring boot-1/7, node n2", m, want.seq, want.index)
		}
		if err := m.AckSync(t.Context()); err != nil {
			t.Fatalf("AckSync: %v", err)
		}
	}
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.AckFloor.Stream != 1 {
		t.Errorf("got %d acks pending, ack floor %d; want 0 and 1 (the message acknowledged)", info.NumAckPending, info.AckFloor.Stream)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := k.Stats(), (bj.Stats{Received: 3, Delivered: 2, DecodeErrors: 1, Acked: 2}); got != want {
		t.Errorf("got stats %+v, want %+v", got, want)
	}
}

// TestConsumerTerm: messages that do not decode are counted and
// terminated, so the server does not deliver them again; the next good
// message still arrives.
func TestConsumerTerm(t *testing.T) {
	s := natstest.Start(t)
	_, j := natstest.Connect(t, s)
	createStream(t, j)
	bad := []*nats.Msg{
		{Subject: "ev.bad", Data: []byte("short")},
		{Subject: "ev.bad", Data: packed([]byte{1}), Header: nats.Header{bj.HeaderCount: {"1"}}},
		{Subject: "ev.bad", Data: packed(encode(t, event{})), Header: nats.Header{bj.HeaderCount: {"two"}}},
		{Subject: "ev.bad", Data: encode(t, event{}), Header: nats.Header{bj.HeaderPos: {"-1"}}},
		{Subject: "ev.bad", Data: packed(encode(t, event{}))[:10], Header: nats.Header{bj.HeaderCount: {"1"}}},
		// Message-level faults count once, whatever the count says.
		{Subject: "ev.bad", Header: nats.Header{bj.HeaderCount: {"0"}}},
		{Subject: "ev.bad", Data: packed(nil), Header: nats.Header{bj.HeaderCount: {"2000000000"}}},
	}
	for _, m := range bad {
		if _, err := j.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := j.Publish(t.Context(), "ev.good", encode(t, event{Seq: 9})); err != nil {
		t.Fatal(err)
	}
	c := newPullConsumer(t, j, 200*time.Millisecond)
	k, err := bj.NewConsumer[event](t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	m := recv(t, k)
	if m.Value.Seq != 9 || m.Seq != uint64(len(bad)+1) {
		t.Fatalf("got %+v, want the good message (value 9, sequence %d)", m, len(bad)+1)
	}
	if err := m.AckSync(t.Context()); err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.NumRedelivered != 0 || info.AckFloor.Stream != uint64(len(bad)+1) {
		t.Errorf("got %d pending, %d redelivered, ack floor %d; want 0, 0, %d", info.NumAckPending, info.NumRedelivered, info.AckFloor.Stream, len(bad)+1)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := k.Stats(), (bj.Stats{Received: uint64(len(bad) + 1), Delivered: 1, DecodeErrors: uint64(len(bad)), Acked: 1}); got != want {
		t.Errorf("got stats %+v, want %+v", got, want)
	}
}

// TestConsumerAbort: cancelling ctx stops the Consumer at once; what sits
// in C()'s buffer is taken back and counted Dropped (and delivered again
// by the server), and Wait returns the cause.
func TestConsumerAbort(t *testing.T) {
	const n = 5
	s := natstest.Start(t)
	_, j := natstest.Connect(t, s)
	createStream(t, j)
	for i := range n {
		if _, err := j.Publish(t.Context(), "ev.a", encode(t, event{Seq: uint64(i)})); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := cancelled(t)
	k, err := bj.NewConsumer[event](ctx, newPullConsumer(t, j, 500*time.Millisecond), bj.WithBuffer(n))
	if err != nil {
		t.Fatal(err)
	}
	m := recv(t, k)
	if err := m.Ack(); err != nil {
		t.Fatal(err)
	}
	cause := cancel()
	for range k.C() {
	}
	if err := k.Wait(); !errors.Is(err, cause) {
		t.Errorf("Wait: got %v, want the cause %v", err, cause)
	}
	st := k.Stats()
	identity(t, "consumer", st.Received, st.Delivered, st.Dropped, st.DecodeErrors)
	if st.Acked != 1 {
		t.Errorf("got %d acked, want 1", st.Acked)
	}
	// Every record not acknowledged comes again to the next consumer.
	k2, err := bj.NewConsumer[event](t.Context(), newPullConsumer(t, j, 500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64]bool{m.Value.Seq: true}
	for len(got) < n {
		r := recv(t, k2)
		got[r.Value.Seq] = true
		if err := r.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		for range k2.C() {
		}
	}()
	if err := k2.Close(); err != nil {
		t.Fatal(err)
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

// TestConsumerAckPolicy: only explicit acknowledgement is at least once.
// With AckAll, acknowledging a record would acknowledge every earlier
// message too, records the receiver never acknowledged; with AckNone
// nothing is ever delivered again. NewConsumer refuses both, naming the
// consumer.
func TestConsumerAckPolicy(t *testing.T) {
	s := natstest.Start(t)
	_, j := natstest.Connect(t, s)
	createStream(t, j)
	for _, tc := range []struct {
		policy jetstream.AckPolicy
		ok     bool
	}{
		{jetstream.AckExplicitPolicy, true},
		{jetstream.AckAllPolicy, false},
		{jetstream.AckNonePolicy, false},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			name := "reader_" + tc.policy.String()
			c, err := j.CreateConsumer(t.Context(), "EV", jetstream.ConsumerConfig{Durable: name, AckPolicy: tc.policy})
			if err != nil {
				t.Fatal(err)
			}
			k, err := bj.NewConsumer[event](t.Context(), c)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("got %v, want a Consumer", err)
			case tc.ok:
				closeConsumer(t, k)
			case err == nil:
				closeConsumer(t, k)
				t.Fatalf("got a Consumer, want an error matching ErrOption")
			case !errors.Is(err, bj.ErrOption) || !strings.Contains(err.Error(), strconv.Quote(name)):
				t.Errorf("got %v, want an error matching ErrOption naming the consumer %q", err, name)
			}
		})
	}
}

// TestConsumerDecoderPanics: a WithDecoder function that panics on a
// message's bytes is counted as a decode error, the message terminated
// (else every Consumer after this one would meet it again), and the next
// message delivered.
func TestConsumerDecoderPanics(t *testing.T) {
	s := natstest.Start(t)
	_, j := natstest.Connect(t, s)
	createStream(t, j)
	for _, b := range [][]byte{nil, {7}} {
		if _, err := j.Publish(t.Context(), "ev.a", b); err != nil {
			t.Fatal(err)
		}
	}
	c := newPullConsumer(t, j, 200*time.Millisecond)
	k, err := bj.NewConsumer[byte](t.Context(), c, bj.WithDecoder(func(b []byte) (byte, error) { return b[0], nil }))
	if err != nil {
		t.Fatal(err)
	}
	if m := recv(t, k); m.Value != 7 || m.Seq != 2 {
		t.Errorf("got value %d of message %d, want 7 of message 2", m.Value, m.Seq)
	} else if err := m.AckSync(t.Context()); err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.NumRedelivered != 0 || info.AckFloor.Stream != 2 {
		t.Errorf("got %d pending, %d redelivered, ack floor %d; want 0, 0, 2 (the first message terminated)", info.NumAckPending, info.NumRedelivered, info.AckFloor.Stream)
	}
	closeConsumer(t, k)
	if got, want := k.Stats(), (bj.Stats{Received: 2, Delivered: 1, DecodeErrors: 1, Acked: 1}); got != want {
		t.Errorf("got stats %+v, want %+v", got, want)
	}
}

// TestConsumerServerRestart: the server restarts on its store under a
// running Consumer; records published after the restart arrive (nats.go's
// pull iterator issues a new pull on reconnection), none acknowledged
// before it comes again.
func TestConsumerServerRestart(t *testing.T) {
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
