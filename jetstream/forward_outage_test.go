package jetstream_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	bj "github.com/bpfchan/bpfchan/jetstream"
	"github.com/bpfchan/bpfchan/jetstream/internal/natstest"
)

// ackDropper is a TCP proxy between a client and a server that can drop
// everything the server sends (PubAcks included) while it forwards what
// the client sends: the server stores the messages, the client never hears
// of it. cut closes the connections it carries, so the client reconnects
// (through the proxy again).
type ackDropper struct {
	ln     net.Listener
	target string
	drop   atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newAckDropper(t *testing.T, target string) *ackDropper {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &ackDropper{ln: ln, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *ackDropper) url() string { return "nats://" + p.ln.Addr().String() }

func (p *ackDropper) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Go(func() {
			// Not io.Copy: between two TCP connections it splices through
			// a pipe the runtime keeps, which the fd check would report.
			io.CopyBuffer(struct{ io.Writer }{s}, struct{ io.Reader }{c}, make([]byte, 32<<10))
			s.Close()
			c.Close()
		})
		p.wg.Go(func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := s.Read(buf)
				if n > 0 && !p.drop.Load() {
					if _, werr := c.Write(buf[:n]); werr != nil {
						err = werr
					}
				}
				if err != nil {
					s.Close()
					c.Close()
					return
				}
			}
		})
	}
}

// cut closes every connection the proxy carries.
func (p *ackDropper) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestForwardOutageLongerThanWindow: a Forwarder's connection loses the
// PubAcks of messages the server stored, and comes back after the stream's
// duplicate window has passed, the Forwarder running all along (as
// nats.MaxReconnects(-1) keeps it). The window no longer knows those IDs:
// sent again blindly, every one would be stored twice. Before resending a
// message first sent more than half the window ago, the Forwarder reads
// what the stream holds of its ring, as it does at the start, and counts
// what it finds Skipped. Here the window is 300 ms; with ForwardStream's
// hour it takes an outage (or a partition that eats the PubAcks) of more
// than half an hour.
func TestForwardOutageLongerThanWindow(t *testing.T) {
	const n, window = 100, 300 * time.Millisecond
	rb := newRing(t, 1<<16)
	prod := newProducer(t, rb, 16)
	l := natstest.StartLoopback(t)
	_, direct := l.Connect()
	cfg := bj.ForwardStream("FWD", "fwd.>")
	cfg.Duplicates = window
	st, err := direct.CreateStream(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newAckDropper(t, l.Server().Addr().String())
	nc, err := nats.Connect(proxy.url(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	j, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	src := ackSource[rec16](t, rb)
	// An ack wait longer than the test: only the reconnection sends again.
	f := forward(t, t.Context(), src, j, "fwd.n1", bj.WithNode("n1"), bj.WithAckWait(time.Hour))

	proxy.drop.Store(true)
	produce(t, prod, n)
	waitStored(t, st, "fwd.n1", n) // stored; no PubAck reached the Forwarder
	waitWindow(t, direct, window)
	proxy.drop.Store(false)
	proxy.cut()

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := f.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if err := f.Close(); err != nil && !errors.Is(err, bj.ErrClosed) {
		t.Fatal(err)
	}
	count := make(map[uint64]int)
	for _, r := range streamRecordsOn(t, st, "fwd.n1") {
		count[r.seq]++
	}
	twice := 0
	for seq := range uint64(n) {
		switch count[seq] {
		case 1:
		case 2:
			twice++
		default:
			t.Errorf("record %d is %d times in the stream, want once", seq, count[seq])
		}
	}
	if twice > 0 {
		t.Errorf("got %d of %d records twice in the stream, want each once (forwarder stats %+v)", twice, n, f.Stats())
	}
	if st := checkStats(t, f); st.Delivered != n || st.Skipped != n || st.Acked != n {
		t.Errorf("got stats %+v, want %d delivered, acked and skipped (found in the stream, not sent again)", st, n)
	}
}

// waitStored receives, through an ordered consumer, until the stream holds
// n messages on subject.
func waitStored(t *testing.T, st jetstream.Stream, subject string, n int) {
	t.Helper()
	c, err := st.OrderedConsumer(t.Context(), jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	it, err := c.Messages()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Stop()
	for range n {
		if _, err := it.Next(jetstream.NextContext(t.Context())); err != nil {
			t.Fatal(err)
		}
	}
}
