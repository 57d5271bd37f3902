package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"

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

// NewConsumer starts a Consumer of c, a pull consumer the caller made (its
// AckPolicy must be explicit, the default). Delivery is at least once: a
// record is acknowledged with Msg.Ack, and a message not acknowledged in
// time is delivered again by the server (Msg.Delivered counts).
//
// A message with a HeaderCount header is packed: its records are unpacked
// (see the package documentation for the format) and delivered one by one,
// and the message is acknowledged on the server once each of its records is.
// A record that does not decode is counted in Stats.DecodeErrors and the
// others are delivered; a message none of whose records decodes is
// terminated (Term), so the server does not deliver it again.
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
// the error that stopped it, naming the consumer (the consumer deleted, the
// connection closed, a decoder that panicked: ErrPanic).
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
		if err := l.unpack(m); err != nil {
			return fmt.Errorf("consume %s: %w", l.k.name, err)
		}
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
// decode; a message with none that decodes is terminated. Only a
// decoder's panic is returned.
func (l *consumeLoop[T]) unpack(m js.Msg) error {
	cnt := &l.k.h.cnt
	l.recs = l.recs[:0]
	h := m.Headers()
	st := &ackState{m: m, cnt: cnt}
	base := Msg[T]{Subject: m.Subject(), Node: h.Get(HeaderNode), Ring: h.Get(HeaderRing), state: st}
	var bad bool // a message-level fault: its records cannot be told apart
	if meta, err := m.Metadata(); err == nil {
		base.Seq, base.Delivered = meta.Sequence.Stream, meta.NumDelivered
	} else {
		bad = true
	}
	if p := h.Get(HeaderPos); p != "" {
		pos, err := strconv.ParseUint(p, 10, 64)
		bad = bad || err != nil
		base.Pos = pos
	}
	var panicked error
	add := func(i int, rec []byte) {
		cnt.received.Add(1)
		r := &Msg[T]{Subject: base.Subject, Node: base.Node, Ring: base.Ring, Pos: base.Pos, Index: i,
			Seq: base.Seq, Delivered: base.Delivered, state: st}
		if err := l.decode(rec, &r.Value); err != nil {
			cnt.decodeErrors.Add(1)
			if errors.Is(err, ErrPanic) && panicked == nil {
				panicked = err
			}
			return
		}
		l.recs = append(l.recs, r)
	}
	switch n := h.Get(HeaderCount); {
	case bad:
		cnt.received.Add(1)
		cnt.decodeErrors.Add(1)
	case n == "":
		add(0, m.Data())
	default:
		count, err := strconv.ParseUint(n, 10, 31)
		if err != nil {
			cnt.received.Add(1)
			cnt.decodeErrors.Add(1)
			break
		}
		got, err := unpack(m.Data(), int(count), add)
		if err != nil {
			// The records the payload does not frame, or a trailer
			// after the last one, are counted as one each.
			missing := max(int(count)-got, 1)
			cnt.received.Add(uint64(missing))
			cnt.decodeErrors.Add(uint64(missing))
		}
	}
	if panicked != nil {
		l.drop(l.recs)
		l.recs = l.recs[:0]
		return panicked
	}
	if len(l.recs) == 0 {
		// Nothing to deliver: tell the server never to send it again.
		_ = m.TermWithReason("bpfchan: no record decodes")
		return nil
	}
	st.left.Store(int32(len(l.recs)))
	return nil
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
