package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bpfchan/bpfchan/jetstream/internal/testenv"
)

func TestMain(m *testing.M) {
	// The children of tests that run this binary again.
	if pin := os.Getenv(childEnv); pin != "" {
		os.Exit(forwardChild(pin)) // TestForwardKilled
	}
	if mode := os.Getenv(panicChildEnv); mode != "" {
		os.Exit(panicChild(mode)) // TestPanicsOnData
	}
	testenv.Main(m)
}

// event is the fixed-size value the tests publish and consume.
type event struct {
	Seq uint64
	PID uint32
	CPU uint32
}

// createStream makes the stream "EV" capturing "ev.>" with a one-hour
// duplicate window.
func createStream(t *testing.T, j jetstream.JetStream) jetstream.Stream {
	t.Helper()
	s, err := j.CreateStream(t.Context(), jetstream.StreamConfig{Name: "EV", Subjects: []string{"ev.>"}, Duplicates: 3600e9})
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	return s
}

// streamMsgs reads every message of stream s, in order.
func streamMsgs(t *testing.T, s jetstream.Stream) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := t.Context()
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get message %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}

// cancelled returns a context and a function cancelling it with a cause
// the test can recognise.
func cancelled(t *testing.T) (context.Context, func() error) {
	ctx, cancel := context.WithCancelCause(t.Context())
	cause := fmt.Errorf("test %s stops", t.Name())
	return ctx, func() error { cancel(cause); return cause }
}

// identity checks Received == Delivered + Dropped + DecodeErrors.
func identity(t *testing.T, what string, received, delivered, dropped, decodeErrors uint64) {
	t.Helper()
	if received != delivered+dropped+decodeErrors {
		t.Errorf("%s: received %d != delivered %d + dropped %d + decode errors %d", what, received, delivered, dropped, decodeErrors)
	}
}

var errTest = errors.New("test error")
