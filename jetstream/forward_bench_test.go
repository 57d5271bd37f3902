package jetstream_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bpfchan/bpfchan/pump"

	bj "github.com/bpfchan/bpfchan/jetstream"
	"github.com/bpfchan/bpfchan/jetstream/internal/natstest"
	"github.com/bpfchan/bpfchan/jetstream/internal/ringprod"
)

// benchChunk is how many records a benchmark produces into the ring at a
// time before it waits until they are forwarded.
const benchChunk = 8192

// forwardChunks runs the benchmark loop: b.N records in chunks, each
// produced by the BPF producer (produceN) and then handled by fwd. The
// production is timed too: a Forwarder (and the raw side's pump) works
// while the producer writes, so a stopped timer would leave part of the
// forwarding untimed, most of all for packed records. Producing costs the
// same on every side compared.
func forwardChunks(b *testing.B, produceN func(int), fwd func(n int)) {
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(benchChunk, b.N-done)
		produceN(n)
		fwd(n)
		done += n
	}
}

// BenchmarkForward forwards b.N 16-byte records of a live BPF ring, one
// message per record with every PubAck awaited, on one in-process server
// with file storage: "raw" is a hand-written loop (the records read from a
// RingBufAcked source, each published with nats.go's async publish with
// the same message ID and headers as Forward's, all PubAcks awaited, then
// the ring acknowledged), "forward" is Forward with Flush. It reports
// forward/raw, the ratio of their rates (1 = as fast). Run it with
// -count 1 and repeat the command (the ratio is taken against the raw run
// just before).
func BenchmarkForward(b *testing.B) {
	s := natstest.Start(b)
	_, j := natstest.Connect(b, s)
	forwardStream(b, j)
	var rawNs float64
	b.Run("raw", func(b *testing.B) {
		rb := newRing(b, 1<<20)
		p := newProducer(b, rb, 16)
		src := ackSource[rec16](b, rb)
		var failed atomic.Int64
		raw, err := jetstream.New(j.Conn(), jetstream.WithPublishAsyncMaxPending(bj.DefaultMaxPending),
			jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { failed.Add(1) }))
		if err != nil {
			b.Fatal(err)
		}
		node, ring := []string{"bench"}, []string{src.RingID()}
		prefix := "bench/" + src.RingID() + "/"
		forwardChunks(b, func(n int) { produce(b, p, n) }, func(n int) {
			var last uint64
			for got := 0; got < n; {
				batch := <-src.C()
				for _, r := range batch {
					pos := strconv.FormatUint(r.Pos, 10)
					m := &nats.Msg{Subject: "fwd.raw", Data: encode16(r.Value), Header: nats.Header{
						jetstream.MsgIDHeader: {prefix + pos},
						bj.HeaderNode:         node,
						bj.HeaderRing:         ring,
						bj.HeaderPos:          {pos},
					}}
					if _, err := raw.PublishMsgAsync(m); err != nil {
						b.Fatal(err)
					}
					last = r.Pos
				}
				got += len(batch)
				src.Recycle(batch)
			}
			<-raw.PublishAsyncComplete()
			if err := src.Ack(last); err != nil {
				b.Fatal(err)
			}
		})
		if failed.Load() != 0 {
			b.Fatalf("%d publishes failed", failed.Load())
		}
		rawNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("forward", func(b *testing.B) {
		forwardRecords(b, j, "fwd.forward")
		if ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N); rawNs > 0 && ns > 0 {
			b.ReportMetric(rawNs/ns, "forward/raw")
		}
	})
}

// BenchmarkForwardPacked forwards b.N 64-byte records of a live BPF ring
// packed by WithPacked (batches of 256 records per message) and reports
// records/s.
func BenchmarkForwardPacked(b *testing.B) {
	s := natstest.Start(b)
	_, j := natstest.Connect(b, s)
	forwardStream(b, j)
	forwardPacked(b, j, "fwd.packed")
	b.ReportMetric(recordRate(b), "records/s")
}

// forwardRecords is the timed loop of BenchmarkForward's "forward" side,
// shared with BenchmarkDurability: b.N 16-byte records of a live BPF ring
// forwarded by Forward to subject, one message per record, with a Flush
// after each chunk.
func forwardRecords(b *testing.B, j jetstream.JetStream, subject string) {
	rb := newRing(b, 1<<20)
	p := newProducer(b, rb, 16)
	src := ackSource[rec16](b, rb)
	forwardTimed(b, p, forward(b, context.Background(), src, j, subject, bj.WithNode("bench")))
}

// forwardPacked is BenchmarkForwardPacked's timed loop, shared with
// BenchmarkDurability: b.N 64-byte records of a live BPF ring forwarded by
// Forward to subject, packed (WithPacked, batches of 256 records), with a
// Flush after each chunk.
func forwardPacked(b *testing.B, j jetstream.JetStream, subject string) {
	rb := newRing(b, 4<<20)
	p := newProducer(b, rb, 64)
	src := ackSource[rec64](b, rb, pump.WithBatch(256, 0))
	forwardTimed(b, p, forward(b, context.Background(), src, j, subject, bj.WithNode("bench"), bj.WithPacked()))
}

// forwardTimed runs forwardChunks with p producing and f forwarding, then
// checks that f delivered every record.
func forwardTimed(b *testing.B, p *ringprod.Producer, f *bj.Forwarder) {
	forwardChunks(b, func(n int) { produce(b, p, n) }, func(int) {
		if err := f.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
	})
	if st := f.Stats(); st.Delivered != uint64(b.N) {
		b.Fatalf("got %d delivered, want %d", st.Delivered, b.N)
	}
}

// recordRate is the rate of the benchmark's records, per second of timed
// work.
func recordRate(b *testing.B) float64 { return float64(b.N) / b.Elapsed().Seconds() }
