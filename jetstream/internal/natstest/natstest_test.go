package natstest_test

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bpfchan/bpfchan/jetstream/internal/natstest"
	"github.com/bpfchan/bpfchan/jetstream/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestStart(t *testing.T) {
	s := natstest.Start(t)
	_, j := natstest.Connect(t, s)
	ctx := t.Context()
	if _, err := j.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
		t.Fatal(err)
	}
	ack, err := j.Publish(ctx, "s.a", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Sequence != 1 {
		t.Errorf("got sequence %d, want 1", ack.Sequence)
	}
}

// TestLoopbackRestart: a stream and its messages survive a restart on the
// same store, and a client configured by Connect reconnects by itself.
func TestLoopbackRestart(t *testing.T) {
	l := natstest.StartLoopback(t)
	_, j := l.Connect()
	ctx := t.Context()
	if _, err := j.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Publish(ctx, "s.a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	url := l.URL()
	l.Stop()
	l.Start()
	if got := l.URL(); got != url {
		t.Errorf("got URL %s after the restart, want %s", got, url)
	}
	ack, err := j.Publish(ctx, "s.a", []byte("y"), jetstream.WithRetryAttempts(100))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Sequence != 2 {
		t.Errorf("got sequence %d after the restart, want 2", ack.Sequence)
	}
}
