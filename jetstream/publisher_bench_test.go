package jetstream_test

import (
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	bj "github.com/bpfchan/bpfchan/jetstream"
	"github.com/bpfchan/bpfchan/jetstream/internal/natstest"
)

// BenchmarkPublisher publishes b.N 16-byte values, every PubAck awaited,
// through a Publisher and through a bare nats.go async-publish loop (the
// same values, message IDs and node header, the same bound on publishes in
// flight) on the same in-process server, and reports the Publisher's rate
// over the bare loop's (publisher/raw, 1 = as fast). Run it with -count 1
// and repeat the command: with -count N each sub-benchmark runs N times in a
// row and every ratio is taken against the last raw run.
func BenchmarkPublisher(b *testing.B) {
	const inFlight = 1024
	s := natstest.Start(b)
	_, j := natstest.Connect(b, s)
	if _, err := j.CreateStream(b.Context(), jetstream.StreamConfig{Name: "EV", Subjects: []string{"ev.>"}, Storage: jetstream.FileStorage}); err != nil {
		b.Fatal(err)
	}
	_, rawJS := natstest.Connect(b, s)
	raw, err := jetstream.New(rawJS.Conn(), jetstream.WithPublishAsyncMaxPending(inFlight))
	if err != nil {
		b.Fatal(err)
	}
	payload := func(i int) []byte {
		return encode(b, event{Seq: uint64(i), PID: 1})
	}

	var rawNs, pubNs int64
	b.Run("raw", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			m := &nats.Msg{Subject: "ev.raw", Data: payload(i), Header: nats.Header{
				jetstream.MsgIDHeader: {"raw." + strconv.Itoa(i)},
				bj.HeaderNode:         {"bench"},
			}}
			if _, err := raw.PublishMsgAsync(m); err != nil {
				b.Fatal(err)
			}
		}
		<-raw.PublishAsyncComplete()
		rawNs = b.Elapsed().Nanoseconds() / int64(b.N)
	})
	b.Run("publisher", func(b *testing.B) {
		p, err := bj.NewPublisher[event](b.Context(), j, "ev.pub", bj.WithNode("bench"), bj.WithMaxPending(inFlight))
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; b.Loop(); i++ {
			p.C() <- event{Seq: uint64(i), PID: 1}
		}
		if err := p.Close(); err != nil {
			b.Fatal(err)
		}
		if st := p.Stats(); st.Delivered != uint64(b.N) {
			b.Fatalf("got %d delivered, want %d", st.Delivered, b.N)
		}
		pubNs = b.Elapsed().Nanoseconds() / int64(b.N)
		if rawNs > 0 && pubNs > 0 {
			b.ReportMetric(float64(rawNs)/float64(pubNs), "publisher/raw")
		}
	})
}
