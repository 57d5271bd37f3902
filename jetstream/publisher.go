package jetstream

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"

	"github.com/bpfchan/bpfchan/chans"
)

// Publisher publishes the values sent on C() to a JetStream subject, each
// as one message, and counts a value Delivered once the stream's PubAck for
// it arrived. It implements chans.Sender[T].
type Publisher[T any] struct {
	h       handle
	c       chan T
	subject string
	stream  string
}

var _ chans.Sender[int] = (*Publisher[int])(nil)

// NewPublisher starts a Publisher of the values sent on its C() to subject,
// which a stream of s must capture (else an error naming the subject that
// matches jetstream.ErrStreamNotFound). Each value is published with an
// async publish carrying a message ID unique to this Publisher and value
// and the header HeaderNode; at most WithMaxPending publishes are in
// flight. A publish that fails or goes unanswered for WithAckWait is sent
// again with the same message ID (the stream's duplicate window drops a
// copy it already holds), after a backoff (WithRetry), until it is
// acknowledged or ctx is cancelled; retries can change the order of
// messages in the stream.
//
// The payload is T's binary encoding (see the package documentation), or
// WithEncoder's. A value whose message would exceed what the connection
// (its maximum payload) or the stream (its MaxMsgSize) takes is counted in
// Stats.DecodeErrors and skipped.
//
// Options: WithNode, WithMaxPending, WithAckWait, WithRetry, WithBuffer,
// WithEncoder.
func NewPublisher[T any](ctx context.Context, s js.JetStream, subject string, opts ...Option) (*Publisher[T], error) {
	const what = "new publisher"
	c, err := newConfig(what, []string{"WithNode", "WithMaxPending", "WithAckWait", "WithRetry", "WithBuffer", "WithEncoder"}, opts)
	if err != nil {
		return nil, err
	}
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("%s: nil JetStream: %w", what, ErrOption)
	}
	if err := checkSubject(what, subject); err != nil {
		return nil, err
	}
	encode, err := encoderFor[T](what, c)
	if err != nil {
		return nil, err
	}
	st, err := streamOf(ctx, what, s, subject)
	if err != nil {
		return nil, err
	}
	stream := st.CachedInfo().Config.Name
	l := &publishLoop[T]{encode: encode, node: c.node, idPrefix: rand.Text() + "."} // unique per Publisher: its values' message IDs
	l.maxData, err = dataRoom(what, subject, s.Conn(), st, l.header(math.MaxUint64))
	if err != nil {
		return nil, err
	}
	p := &Publisher[T]{c: make(chan T, c.buffer), subject: subject, stream: stream}
	ob, err := newOutbox(s.Conn(), c, &p.h.cnt.retries)
	if err != nil {
		return nil, fmt.Errorf("%s on subject %q: %w", what, subject, err)
	}
	l.p, l.ob = p, ob
	p.h.start(ctx, l.run)
	return p, nil
}

// encoderFor returns the encoder of T: WithEncoder's function, or T's codec.
func encoderFor[T any](what string, c config) (func(T) ([]byte, error), error) {
	if c.encoder != nil {
		f, err := userFunc[func(T) ([]byte, error)](what, "WithEncoder", c.encoder)
		if err != nil {
			return nil, err
		}
		return func(v T) (b []byte, err error) {
			err = guard("encode value", func() error {
				b, err = f(v)
				return err
			})
			return b, err
		}, nil
	}
	cd, err := codecFor[T]()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return func(v T) ([]byte, error) { return cd.encode(nil, &v) }, nil
}

// C returns the channel to send values on. The caller closes it to say "no
// more"; the Publisher then publishes every value it received and waits for
// their acknowledgements before Wait returns.
func (p *Publisher[T]) C() chan<- T { return p.c }

// Wait blocks until the Publisher's goroutine has exited: nil once C() was
// closed or Close was called and every value was acknowledged,
// context.Cause(ctx) after ctx was cancelled, or the permanent error that
// stopped it (the connection closed for good, a message the server refuses
// whatever happens: too large, a bad subject), naming the subject.
func (p *Publisher[T]) Wait() error { return p.h.Wait() }

// Close stops the Publisher without closing C(): once the caller has
// stopped sending, every value whose send completed (including those still
// in C()'s buffer) is published, and Close returns once all of them are
// acknowledged. With the server gone that takes as long as the server
// stays away: cancelling ctx bounds it. A send after Close is misuse.
func (p *Publisher[T]) Close() error { return p.h.Close() }

// Done returns a channel closed when the Publisher has stopped. A caller
// that may outlive it (a permanent error) sends with a select on Done.
func (p *Publisher[T]) Done() <-chan struct{} { return p.h.Done() }

// Stats returns the counters. Once the Publisher has stopped, Received ==
// Delivered + Dropped + DecodeErrors.
func (p *Publisher[T]) Stats() Stats { return p.h.Stats() }

// Subject returns the subject published to; Stream the stream capturing it.
func (p *Publisher[T]) Subject() string { return p.subject }

// Stream returns the name of the stream that captured the subject at
// construction.
func (p *Publisher[T]) Stream() string { return p.stream }

// MetricKind and MetricCounters make a Publisher a metrics.Handle: its
// Stats are exported as bpfchan_jetstream_publisher_<counter>_total.
func (p *Publisher[T]) MetricKind() string { return kindPublisher }

// MetricCounters emits the Stats counters under snake_case names.
func (p *Publisher[T]) MetricCounters(emit func(name string, value uint64)) {
	p.Stats().emit(kindPublisher, emit)
}

// publishLoop is a Publisher's goroutine.
type publishLoop[T any] struct {
	p        *Publisher[T]
	ob       *outbox
	encode   func(T) ([]byte, error)
	node     string
	idPrefix string
	maxData  int // the largest payload a message carries
	seq      uint64
}

// run takes values until C() is closed or Close was seen (then only what
// completed its send), publishes them, and returns once every one is
// acknowledged; ctx or a permanent error stop it at once.
func (l *publishLoop[T]) run(ctx context.Context) (err error) {
	cnt := &l.p.h.cnt
	defer func() {
		// Whatever is unacknowledged now never will be: count it.
		cnt.dropped.Add(uint64(l.ob.stop()))
		if err != nil && ctx.Err() == nil {
			err = fmt.Errorf("publish to %q: %w", l.p.subject, err)
		}
	}()
	in := l.p.c
	acked := func(e *entry, a *js.PubAck) {
		cnt.delivered.Add(uint64(e.n))
		if a != nil && a.Duplicate {
			cnt.duplicates.Add(1)
		}
	}
	closed := false // Close was seen: take what completed its send, no more
	for {
		if in == nil && l.ob.pending() == 0 {
			return nil
		}
		var recv <-chan T
		var closing <-chan struct{}
		if !closed {
			closing = l.p.h.closing
		}
		if in != nil && !l.ob.full() {
			if closed {
				select {
				case v, ok := <-in:
					if !ok {
						in = nil
					} else if err := l.publish(v); err != nil {
						return err
					}
				default:
					in = nil
				}
				continue
			}
			recv = in
		}
		select {
		case v, ok := <-recv:
			if !ok {
				in = nil
				continue
			}
			if err := l.publish(v); err != nil {
				return err
			}
		case <-closing:
			closed = true
		case <-l.ob.notify:
			if err := l.ob.handle(acked); err != nil {
				return err
			}
		case <-l.ob.timerC:
			if err := l.ob.resend(ctx); err != nil {
				return err
			}
		case st := <-l.ob.status:
			if err := l.ob.statusChanged(ctx, st); err != nil {
				return err
			}
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// publish encodes v and sends it.
func (l *publishLoop[T]) publish(v T) error {
	cnt := &l.p.h.cnt
	cnt.received.Add(1)
	data, err := l.encode(v)
	if err == nil && len(data) > l.maxData {
		err = errTooLarge
	}
	if err != nil {
		cnt.decodeErrors.Add(1)
		if errors.Is(err, ErrPanic) {
			return err
		}
		return nil
	}
	l.seq++
	msg := &nats.Msg{Subject: l.p.subject, Data: data, Header: l.header(l.seq)}
	return l.ob.publish(&entry{msg: msg, n: 1})
}

// header is the header of the message of the seq-th value.
func (l *publishLoop[T]) header(seq uint64) nats.Header {
	return nats.Header{
		js.MsgIDHeader: {l.idPrefix + strconv.FormatUint(seq, 10)},
		HeaderNode:     {l.node},
	}
}
