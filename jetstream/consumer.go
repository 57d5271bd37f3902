package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	js "github.com/nats-io/nats.go/jetstream"

	"github.com/bpfchan/bpfchan/chans"
)

// Consumer receives the messages of a JetStream consumer and sends their
// records on C(), one *Msg[T] per record. It implements
// chans.Receiver[*Msg[T]].
type Consumer[T any] struct {
	h    handle
	c    chan *Msg[T]
	name string
}

var _ chans.Receiver[*Msg[int]] = (*Consumer[int])(nil)

// NewConsumer starts a Consumer of c, a pull consumer the caller made,
// whose AckPolicy must be AckExplicit, the default (AckAll and AckNone are
// refused with an error matching ErrOption, naming the consumer). Delivery
// is at least once: a record is acknowledged with Msg.Ack, and a message
// not acknowledged in time is delivered again by the server
// (Msg.Delivered counts).
//
// A message with a HeaderCount header is packed: its records are unpacked
// (see the package documentation for the format) and delivered one by one,
// and the message is acknowledged on the server once each of its records is.
// A record that does not decode (T's UnmarshalBinary or WithDecoder's
// function panicking included) is counted in Stats.DecodeErrors and the
// others are delivered; a message none of whose records decodes, or whose
// headers or packing do not parse (counted once), is terminated (Term,
// with the first error as its reason), so the server does not deliver it
// again.
//
// Options: WithDecoder, WithBuffer.
func NewConsumer[T any](ctx context.Context, c js.Consumer, opts ...Option) (*Consumer[T], error) {
	const what = "new consumer"
	cfg, err := newConfig(what, []string{"WithDecoder", "WithBuffer"}, opts)
	if err != nil {
		return nil, err
	}
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("%s: nil Consumer: %w", what, ErrOption)
	}
	name := "consumer"
	if info := c.CachedInfo(); info != nil {
		name = fmt.Sprintf("consumer %q of stream %q", info.Name, info.Stream)
		if p := info.Config.AckPolicy; p != js.AckExplicitPolicy {
			// AckAll would acknowledge records never acknowledged, AckNone
			// every record: neither is at least once.
			return nil, fmt.Errorf("%s: %s acknowledges with %v, want AckExplicit: %w", what, name, p, ErrOption)
		}
	}
	decode, err := decoderFor[T](what, cfg)
	if err != nil {
		return nil, err
	}
	it, err := c.Messages()
	if err != nil {
		return nil, fmt.Errorf("%s: consume %s: %w", what, name, err)
	}
	k := &Consumer[T]{c: make(chan *Msg[T], cfg.buffer), name: name}
	l := &consumeLoop[T]{k: k, it: it, decode: decode}
	k.h.interrupt = it.Drain // graceful: deliver what the client holds, pull no more
	k.h.start(ctx, l.run)
	return k, nil
}

// decoderFor returns the decoder of T: WithDecoder's function, or T's codec.
func decoderFor[T any](what string, c config) (func([]byte, *T) error, error) {
	if c.decoder != nil {
		f, err := userFunc[func([]byte) (T, error)](what, "WithDecoder", c.decoder)
		if err != nil {
			return nil, err
		}
		return func(b []byte, v *T) error {
			return guard("decode record", func() (err error) {
				*v, err = f(b)
				return err
			})
		}, nil
	}
	cd, err := codecFor[T]()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return cd.decode, nil
}

// C returns the channel of records. It is closed when the Consumer stops,
// after its last send.
func (k *Consumer[T]) C() <-chan *Msg[T] { return k.c }

// Wait blocks until the Consumer's goroutine has exited. It returns nil
// after Close, context.Cause(ctx) after ctx was cancelled, and otherwise
// the error that stopped it, naming the consumer (the consumer deleted,
// the connection closed). A record whose decoding panics does not stop
// it: it is counted as a decode error.
func (k *Consumer[T]) Wait() error { return k.h.Wait() }

// Close stops the Consumer gracefully: it pulls no more messages, delivers
// on C() the records of those the client already holds (so a receiver must
// keep receiving until C() closes), closes C() and returns Wait's result.
func (k *Consumer[T]) Close() error { return k.h.Close() }

// Done returns a channel closed when the Consumer has stopped.
func (k *Consumer[T]) Done() <-chan struct{} { return k.h.Done() }

// Stats returns the counters, in records. When C() is closed they are
// final: Received == Delivered + Dropped + DecodeErrors.
func (k *Consumer[T]) Stats() Stats { return k.h.Stats() }

// MetricKind and MetricCounters make a Consumer a metrics.Handle: its
// Stats are exported as bpfchan_jetstream_consumer_<counter>_total.
func (k *Consumer[T]) MetricKind() string { return kindConsumer }

// MetricCounters emits the Stats counters under snake_case names.
func (k *Consumer[T]) MetricCounters(emit func(name string, value uint64)) {
	k.Stats().emit(kindConsumer, emit)
}

// consumeLoop is a Consumer's goroutine.
type consumeLoop[T any] struct {
	k      *Consumer[T]
	it     js.MessagesContext
	decode func([]byte, *T) error
	recs   []*Msg[T]
}

// run receives messages until the iterator is drained (Close), ctx is
// done, or an error stops it; then it closes C().
func (l *consumeLoop[T]) run(ctx context.Context) (err error) {
	cnt := &l.k.h.cnt
	defer func() {
		l.it.Stop()
		if ctx.Err() != nil {
			l.takeBack()
		}
		close(l.k.c)
	}()
	for {
		m, err := l.it.Next(js.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if errors.Is(err, js.ErrMsgIteratorClosed) && isClosed(l.k.h.closing) {
				return nil
			}
			return fmt.Errorf("consume %s: %w", l.k.name, err)
		}
		l.unpack(m)
		for i, r := range l.recs {
			select {
			case l.k.c <- r:
				cnt.delivered.Add(1)
			case <-ctx.Done():
				l.drop(l.recs[i:])
				return context.Cause(ctx)
			}
		}
	}
}

// unpack decodes the records of m into l.recs, counting those that do not
// decode; a message with none that decodes is terminated.
func (l *consumeLoop[T]) unpack(m js.Msg) {
	cnt := &l.k.h.cnt
	l.recs = l.recs[:0]
	h := m.Headers()
	st := &ackState{m: m, cnt: cnt}
	base := Msg[T]{Subject: m.Subject(), Node: h.Get(HeaderNode), Ring: h.Get(HeaderRing), state: st}
	// fault is the first reason a record or the message failed; a
	// message-level fault (its records cannot be told apart) counts once.
	var fault error
	failed := func(err error) {
		cnt.received.Add(1)
		cnt.decodeErrors.Add(1)
		if fault == nil {
			fault = err
		}
	}
	meta, err := m.Metadata()
	if err == nil {
		base.Seq, base.Delivered = meta.Sequence.Stream, meta.NumDelivered
	}
	if p := h.Get(HeaderPos); p != "" && err == nil {
		if base.Pos, err = strconv.ParseUint(p, 10, 64); err != nil {
			err = fmt.Errorf("%s %q: not a position", HeaderPos, p)
		}
	}
	add := func(i int, rec []byte) {
		r := &Msg[T]{Subject: base.Subject, Node: base.Node, Ring: base.Ring, Pos: base.Pos, Index: i,
			Seq: base.Seq, Delivered: base.Delivered, state: st}
		if err := l.decode(rec, &r.Value); err != nil {
			failed(err)
			return
		}
		cnt.received.Add(1)
		l.recs = append(l.recs, r)
	}
	switch n := h.Get(HeaderCount); {
	case err != nil:
		failed(err)
	case n == "":
		add(0, m.Data())
	default:
		// Each record takes at least its length prefix: a count the payload
		// cannot hold is a fault of the message, not of that many records.
		count, err := strconv.ParseUint(n, 10, 31)
		switch {
		case err != nil:
			failed(fmt.Errorf("%s %q: %w", HeaderCount, n, err))
		case count == 0 || count > uint64(len(m.Data())/packedPrefix):
			failed(fmt.Errorf("%s %d for a payload of %d bytes", HeaderCount, count, len(m.Data())))
		default:
			if _, err := unpack(m.Data(), int(count), add); err != nil {
				failed(err)
			}
		}
	}
	if len(l.recs) == 0 {
		// Nothing to deliver: tell the server never to send it again.
		_ = m.TermWithReason(termReason(fault))
		return
	}
	st.left.Store(int32(len(l.recs)))
}

// termReason is the reason given to the server for terminating a message:
// one line, bounded.
func termReason(err error) string {
	r := "bpfchan: no record decodes"
	if err != nil {
		r += ": " + strings.ReplaceAll(err.Error(), "\n", " ")
	}
	if len(r) > 256 {
		r = r[:256]
	}
	return r
}

// drop counts recs, which no receiver took, as dropped and asks the server
// to deliver their messages again now.
func (l *consumeLoop[T]) drop(recs []*Msg[T]) {
	l.k.h.cnt.dropped.Add(uint64(len(recs)))
	for _, r := range recs {
		_ = r.Nak()
	}
}

// takeBack takes what sits in C()'s buffer after an abort: no receiver got
// it, so it is dropped, not delivered (Stats count what receivers got).
func (l *consumeLoop[T]) takeBack() {
	cnt := &l.k.h.cnt
	for {
		select {
		case r := <-l.k.c:
			cnt.delivered.Add(^uint64(0))
			l.drop([]*Msg[T]{r})
		default:
			return
		}
	}
}

// isClosed reports whether c is closed.
func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
