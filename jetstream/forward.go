package jetstream

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
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
// is left to the caller. src must be unread: its acknowledgements are
// cumulative, so a batch the caller took from src.C() before (and did not
// forward) would be released from the ring with the records Forward
// publishes, and lost without a counter.
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
// messages are in flight. A message fits both the connection's maximum
// payload and the stream's MaxMsgSize (as they are at the call), headers
// included: a packed message is cut to fit, a record that fits alone in no
// message is counted in Stats.DecodeErrors and released, and a stream
// whose limit leaves no room for a fixed-size T is an error naming it.
//
// Before it returns, Forward reads what the stream already holds of this
// ring from src's acknowledged position on (a previous run may have
// published records and stopped before acknowledging them to the ring),
// and those records, when the ring delivers them again, are counted
// Skipped instead of being published twice. It reads the same way, while
// it runs, before it sends again a message it first sent more than half
// the stream's duplicate window ago. The package documentation says what
// "exactly once" covers.
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
	if err := checkSubject(what, subject); err != nil {
		return nil, err
	}
	enc, err := appenderFor[T](what, c)
	if err != nil {
		return nil, err
	}
	st, err := streamOf(ctx, what, s, subject)
	if err != nil {
		return nil, err
	}
	cfg := st.CachedInfo().Config
	if cfg.Retention != js.LimitsPolicy {
		return nil, fmt.Errorf("%s: stream %q of subject %q has %v retention, want Limits: %w", what, cfg.Name, subject, cfg.Retention, ErrRetention)
	}
	ring := src.RingID()
	l := &forwardLoop[T]{
		src:        src,
		st:         st,
		encode:     enc,
		packed:     c.packed,
		maxPending: c.maxPending,
		node:       c.node,
		idPrefix:   c.node + "/" + ring + "/",
		nodeV:      []string{c.node},
		ringV:      []string{ring},
	}
	nc := s.Conn()
	if l.maxData, err = dataRoom(what, subject, nc, st, l.header(math.MaxUint64, math.MaxUint64, math.MaxInt32)); err != nil {
		return nil, err
	}
	if cd, err := codecFor[T](); err == nil && c.encoder == nil && cd.size+l.prefix() > l.maxData {
		return nil, fmt.Errorf("%s to %q: a message of stream %q carries at most %d bytes of records here, less than one %d-byte %s",
			what, subject, cfg.Name, l.maxData, cd.size, cd.name)
	}
	acked, _ := src.Positions()
	if l.skip, err = storedRecords(ctx, st, subject, c.node, ring, acked); err != nil {
		return nil, fmt.Errorf("%s to %q: read what stream %q holds of ring %s: %w", what, subject, cfg.Name, ring, err)
	}
	f := &Forwarder{
		subject:   subject,
		stream:    cfg.Name,
		ring:      ring,
		flush:     make(chan flushReq),
		positions: src.Positions,
	}
	if l.ob, err = newOutbox(nc, c, &f.h.cnt.retries); err != nil {
		return nil, fmt.Errorf("%s to %q: %w", what, subject, err)
	}
	l.f = f
	// A message first sent more than half the duplicate window ago may be
	// stored already with its ID forgotten: look for it before sending it
	// again.
	l.ob.recheck, l.ob.stale = l.recheck, duplicateWindow(cfg)/2
	f.h.start(ctx, l.run)
	return f, nil
}

// checkSubject refuses a subject to publish on that is empty or not one
// subject (wildcards, white space).
func checkSubject(what, subject string) error {
	if subject == "" || strings.ContainsAny(subject, " \t\r\n*>") {
		return fmt.Errorf("%s: subject %q: want one subject, without wildcards or white space: %w", what, subject, ErrOption)
	}
	return nil
}

// streamOf returns the stream capturing subject.
func streamOf(ctx context.Context, what string, s js.JetStream, subject string) (js.Stream, error) {
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
	return st, nil
}

// dataRoom returns the largest payload a message on subject may carry
// beside a header block no larger than h's: what both the connection's
// maximum payload and the stream's MaxMsgSize (each counting headers and
// payload) take. No room at all is an error naming the stream.
func dataRoom(what, subject string, nc *nats.Conn, st js.Stream, h nats.Header) (int, error) {
	limit, by := nc.MaxPayload(), "the connection's maximum payload"
	cfg := st.CachedInfo().Config
	if m := int64(cfg.MaxMsgSize); m > 0 && m < limit {
		limit, by = m, fmt.Sprintf("stream %q's MaxMsgSize", cfg.Name)
	}
	room := limit - int64(headerLen(h))
	if room <= 0 {
		return 0, fmt.Errorf("%s to %q: %s, %d bytes, leaves no room beside %d bytes of headers", what, subject, by, limit, headerLen(h))
	}
	return int(min(room, math.MaxInt32)), nil
}

// headerLen is the size of h's header block as nats.go sends it: the
// version line, "Key: value" lines and the blank line, each ending in
// CRLF.
func headerLen(h nats.Header) int {
	n := len("NATS/1.0\r\n\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(": ") + len(v) + len("\r\n")
		}
	}
	return n
}

// duplicateWindow is the stream's duplicate window, the server's default
// when the configuration does not say.
func duplicateWindow(cfg js.StreamConfig) time.Duration {
	if cfg.Duplicates > 0 {
		return cfg.Duplicates
	}
	return 2 * time.Minute
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
// for good, a message the server refuses whatever happens (a 400, such as
// a stream whose MaxMsgSize was lowered after Forward started: the next
// Forward cuts to the new limit), or a record whose encoding panicked
// (ErrPanic, naming the record's position: the record stays in the ring,
// so the next Forwarder meets it again until the encoding is fixed).
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
