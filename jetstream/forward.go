package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	js "github.com/nats-io/nats.go/jetstream"

	"github.com/bpfchan/bpfchan/pump"
)

// Forwarder publishes the records of a durable ring (pump.RingBufAcked)
// to a JetStream subject and acknowledges the ring only once the stream
// holds them; see Forward.
type Forwarder struct {
	h         handle
	subject   string
	stream    string
	ring      string
	flush     chan flushReq
	positions func() (acked, produced uint64)
}

// flushReq is a Flush waiting until the ring's acknowledged position
// reaches target.
type flushReq struct {
	target uint64
	done   chan error // buffered: the loop never blocks on it
}

// ForwardStream returns the configuration of a stream fit for Forward:
// Limits retention (a message stays until the stream's limits remove it,
// whoever reads it), file storage and a duplicate window of one hour, the
// longest restart that message IDs alone keep free of duplicates. In a
// cluster set Replicas to 3: a PubAck from one server is not on disk yet
// (see the package documentation).
func ForwardStream(name string, subjects ...string) js.StreamConfig {
	return js.StreamConfig{
		Name:       name,
		Subjects:   subjects,
		Retention:  js.LimitsPolicy,
		Storage:    js.FileStorage,
		Duplicates: time.Hour,
	}
}

// Forward publishes the records src delivers to subject, which a stream of
// s with Limits retention must capture (else an error naming the subject:
// no stream matches jetstream.ErrStreamNotFound, another retention
// ErrRetention), and acknowledges each record to src only once the stream
// has acknowledged it and every record before it. Forward owns src from
// then on and closes it when it stops; when Forward returns an error, src
// is left to the caller.
//
// Each record is one message (with WithPacked, each batch of src is one
// message), carrying the headers HeaderNode (WithNode), HeaderRing
// (src.RingID()) and HeaderPos (the record's Pos; packed: the first
// record's, with HeaderCount and HeaderLast) and the message ID
// "node/ring/pos" (packed: "node/ring/first-last"); its payload is the
// record's value encoded as T's binary encoding (or WithEncoder's). The
// publishes follow the package's retry policy: a failed or unanswered
// publish is sent again with the same message ID, with backoff, until the
// stream acknowledges it or ctx is cancelled. At most WithMaxPending
// messages are in flight.
//
// Before it returns, Forward reads what the stream already holds of this
// ring from src's acknowledged position on (a previous run may have
// published records and stopped before acknowledging them to the ring),
// and those records, when the ring delivers them again, are counted
// Skipped instead of being published twice. The package documentation says
// what "exactly once" covers.
//
// Options: WithNode, WithMaxPending, WithAckWait, WithRetry, WithEncoder,
// WithPacked.
func Forward[T any](ctx context.Context, src *pump.AckSource[T], s js.JetStream, subject string, opts ...Option) (*Forwarder, error) {
	const what = "forward"
	c, err := newConfig(what, []string{"WithNode", "WithMaxPending", "WithAckWait", "WithRetry", "WithEncoder", "WithPacked"}, opts)
	if err != nil {
		return nil, err
	}
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	if src == nil || s == nil {
		return nil, fmt.Errorf("%s: nil source or JetStream: %w", what, ErrOption)
	}
	if subject == "" || strings.ContainsAny(subject, " \t\r\n*>") {
		return nil, fmt.Errorf("%s: subject %q: want one subject, without wildcards or white space: %w", what, subject, ErrOption)
	}
	enc, err := appenderFor[T](what, c)
	if err != nil {
		return nil, err
	}
	st, err := streamFor(ctx, what, s, subject)
	if err != nil {
		return nil, err
	}
	ring := src.RingID()
	acked, _ := src.Positions()
	skip, err := storedRecords(ctx, st, subject, c.node, ring, acked)
	if err != nil {
		return nil, fmt.Errorf("%s to %q: read what the stream holds of ring %s: %w", what, subject, ring, err)
	}
	f := &Forwarder{
		subject:   subject,
		stream:    st.CachedInfo().Config.Name,
		ring:      ring,
		flush:     make(chan flushReq),
		positions: src.Positions,
	}
	nc := s.Conn()
	maxData := int(nc.MaxPayload()) - headerRoom
	if maxData <= 0 {
		return nil, fmt.Errorf("%s to %q: the connection's maximum payload %d leaves no room for records", what, subject, nc.MaxPayload())
	}
	ob, err := newOutbox(nc, c, &f.h.cnt.retries)
	if err != nil {
		return nil, fmt.Errorf("%s to %q: %w", what, subject, err)
	}
	l := &forwardLoop[T]{
		f:          f,
		src:        src,
		ob:         ob,
		encode:     enc,
		packed:     c.packed,
		maxPending: c.maxPending,
		maxData:    maxData,
		idPrefix:   c.node + "/" + ring + "/",
		nodeV:      []string{c.node},
		ringV:      []string{ring},
		skip:       skip,
	}
	f.h.start(ctx, l.run)
	return f, nil
}

// headerRoom is what a message's payload leaves of the connection's
// maximum payload for its subject and headers.
const headerRoom = 1024

// streamFor returns the stream capturing subject, refusing one whose
// retention is not Limits.
func streamFor(ctx context.Context, what string, s js.JetStream, subject string) (js.Stream, error) {
	name, err := s.StreamNameBySubject(ctx, subject)
	if err != nil {
		if errors.Is(err, js.ErrStreamNotFound) {
			return nil, fmt.Errorf("%s: no stream captures subject %q: %w", what, subject, err)
		}
		return nil, fmt.Errorf("%s: look up the stream of subject %q: %w", what, subject, err)
	}
	st, err := s.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("%s: stream %q of subject %q: %w", what, name, subject, err)
	}
	if r := st.CachedInfo().Config.Retention; r != js.LimitsPolicy {
		return nil, fmt.Errorf("%s: stream %q of subject %q has %v retention, want Limits: %w", what, name, subject, r, ErrRetention)
	}
	return st, nil
}

// appenderFor returns the function that appends the encoding of a T to a
// payload: WithEncoder's function, or T's codec.
func appenderFor[T any](what string, c config) (func([]byte, *T) ([]byte, error), error) {
	if c.encoder == nil {
		cd, err := codecFor[T]()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return cd.encode, nil
	}
	enc, err := encoderFor[T](what, c)
	if err != nil {
		return nil, err
	}
	return func(dst []byte, v *T) ([]byte, error) {
		b, err := enc(*v)
		if err != nil {
			return dst, err
		}
		return append(dst, b...), nil
	}, nil
}

// Close stops the Forwarder gracefully: it takes no more records from the
// ring, waits until the stream has acknowledged every message it published
// (with the server gone, as long as ctx allows), acknowledges them to the
// ring, closes the source and returns Wait's result. Records it had taken
// but not yet published stay in the ring (counted Dropped) for its next
// reader.
func (f *Forwarder) Close() error { return f.h.Close() }

// Wait blocks until the Forwarder's goroutine has exited and its source is
// closed. It returns nil after Close, context.Cause(ctx) after ctx was
// cancelled, and otherwise the error that stopped it, naming the subject:
// the source stopped (its own ctx, or its failure), the connection closed
// for good, an encoder that panicked (ErrPanic).
func (f *Forwarder) Wait() error { return f.h.Wait() }

// Done returns a channel closed when the Forwarder has stopped.
func (f *Forwarder) Done() <-chan struct{} { return f.h.Done() }

// Flush returns once every record the ring held when it was called (up to
// the producer position src.Positions reported then) is in the stream and
// acknowledged to the ring. Cancelling ctx makes it return
// context.Cause(ctx) at once; the Forwarder goes on. On a Forwarder that
// stops first, Flush returns the error that stopped it, or one matching
// ErrClosed.
//
// Hazard: the ring's acknowledged position moves over a record only with a
// record after it that is delivered; a record discarded by its producer or
// failing to decode at the very end of the ring holds Flush until the
// next record arrives.
func (f *Forwarder) Flush(ctx context.Context) error {
	_, target := f.positions()
	r := flushReq{target: target, done: make(chan error, 1)}
	select {
	case f.flush <- r:
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-f.h.done:
		return f.stopped()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// stopped is Flush's error once the Forwarder has stopped.
func (f *Forwarder) stopped() error {
	if err := f.h.Wait(); err != nil {
		return fmt.Errorf("flush to %q: %w", f.subject, err)
	}
	return fmt.Errorf("flush to %q: the forwarder has stopped: %w", f.subject, ErrClosed)
}

// Stats returns the counters, in records. Once the Forwarder has stopped,
// Received == Delivered + Dropped + DecodeErrors; while it runs, the
// difference is what is in flight (taken from the ring, not yet
// acknowledged by the stream). Acked <= Delivered: a record the stream
// acknowledged after a record still in flight is released to the ring
// once that one is.
func (f *Forwarder) Stats() Stats { return f.h.Stats() }

// Subject returns the subject published to.
func (f *Forwarder) Subject() string { return f.subject }

// Stream returns the name of the stream that captured the subject at
// construction.
func (f *Forwarder) Stream() string { return f.stream }

// Ring returns the identity of the ring forwarded (its HeaderRing).
func (f *Forwarder) Ring() string { return f.ring }

// MetricKind and MetricCounters make a Forwarder a metrics.Handle: its
// Stats are exported as bpfchan_jetstream_forwarder_<counter>_total.
func (f *Forwarder) MetricKind() string { return kindForwarder }

// MetricCounters emits the Stats counters under snake_case names.
func (f *Forwarder) MetricCounters(emit func(name string, value uint64)) {
	f.Stats().emit(kindForwarder, emit)
}
