package pump

import (
	"context"
	"errors"
	"time"

	"github.com/bpfchan/bpfchan/chans"
	"github.com/bpfchan/bpfchan/internal/codec"
)

// Source is a pump that takes records out of a kernel map and sends them on
// C(). It implements chans.Receiver[T].
type Source[T any] struct {
	h       handle
	c       chan T
	recycle func(T)
}

// C returns the channel of values. It is closed when the pump stops, after
// its last send.
func (s *Source[T]) C() <-chan T { return s.c }

// Wait blocks until the pump's goroutine has exited. It returns nil after
// Close, context.Cause(ctx) after ctx was cancelled, and otherwise the error
// (naming the map) that stopped the pump.
func (s *Source[T]) Wait() error { return s.h.Wait() }

// Close stops the pump gracefully: what the kernel buffer already holds is
// delivered on C() (so a consumer must keep receiving), then C() is closed.
// It returns Wait's result.
func (s *Source[T]) Close() error { return s.h.Close() }

// Stats returns the pump's counters. While the pump runs they are a recent
// snapshot (published whenever the pump is about to block); after it stopped
// they are final and Received == Delivered + Dropped + DecodeErrors.
func (s *Source[T]) Stats() Stats { return s.h.Stats() }

// Recycle hands a batch received from a RingBufBatches source back to the
// pump, which will reuse its memory for a later batch: the zero-allocation
// path. The caller must not touch v afterwards. Without Recycle every batch
// is freshly allocated and belongs to its receiver. On other sources
// Recycle does nothing.
func (s *Source[T]) Recycle(v T) {
	if s.recycle != nil {
		s.recycle(v)
	}
}

// feed is where a source's records come from: one implementation per kind
// of map (ring buffer, perf buffer, queue or stack poller). The one loop in
// pump.run drives them all.
type feed interface {
	// next returns the next record, or ok=false when the map has none now.
	// The bytes are valid until the next call.
	next() (rec []byte, ok bool, err error)
	// wait blocks until next may find a record. It returns nil to look
	// again, errInterrupted after interrupt, or the error that stops the
	// pump (context.Cause(ctx) when ctx is done).
	wait(ctx context.Context) error
	// interrupt makes the current and every later wait return at once. It
	// is called from other goroutines.
	interrupt()
	// close releases the feed's resources after the loop has exited.
	close() error
}

var errInterrupted = errors.New("interrupted")

// emitter turns decoded values into sends on C(): one value per send, or
// batches.
type emitter[E any] interface {
	// slot is where the next record is decoded.
	slot() *E
	// commit delivers (or batches) the value in the slot.
	commit(ctx context.Context) error
	// flush sends what is batched; called when the map is empty.
	flush(ctx context.Context) error
	// discard counts what is still held as dropped, when stopping early.
	discard()
	// close closes C().
	close()
}

// pump is the one loop every source runs.
type pump[E any] struct {
	h      *handle
	feed   feed
	decode func(b []byte, v *E) error
	em     emitter[E]
}

// run drains the feed, then waits for more, until a graceful stop finds it
// empty, ctx is done, or the feed fails.
func (p *pump[E]) run(ctx context.Context) (err error) {
	n := &p.h.cnt.n
	final := false
	defer func() {
		p.em.discard()
		p.em.close()
	}()
	for {
		for i := 1; ; i++ {
			rec, ok, err := p.feed.next()
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			n.Received++
			if err := p.decode(rec, p.em.slot()); err != nil {
				n.DecodeErrors++
				if errors.Is(err, ErrPanic) {
					return err
				}
				continue
			}
			if err := p.em.commit(ctx); err != nil {
				return err
			}
			if i%64 == 0 && ctx.Err() != nil {
				return context.Cause(ctx)
			}
		}
		if err := p.em.flush(ctx); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if p.h.closing.Load() {
			// Graceful stop: one more full drain that starts after
			// Close, so what the map held when Close was called is
			// delivered even if the drain above ended early (cilium
			// can report "empty" once for an earlier, stale wait).
			if final {
				return nil
			}
			final = true
			continue
		}
		p.h.cnt.publish()
		if err := p.feed.wait(ctx); err != nil && err != errInterrupted {
			return err
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
	}
}

// start wires a feed and an emitter into a running source.
func start[E, T any](ctx context.Context, f feed, dec func([]byte, *E) error, em emitter[E], s *Source[T]) {
	p := &pump[E]{h: &s.h, feed: f, decode: dec, em: em}
	s.h.start(ctx, f.interrupt, p.run, f.close)
}

// decoderFor returns how records become E: the user's decoder (guarded
// against panics) or the codec, whose size is returned (-1 when records of
// any size are accepted).
func decoderFor[E any](c config, what string) (dec func([]byte, *E) error, size int, err error) {
	if c.decoder != nil {
		f, ok := c.decoder.(func([]byte) (E, error))
		if !ok {
			return nil, 0, errors.Join(ErrOption, errWrongFunc[E](what, "WithDecoder", c.decoder))
		}
		return func(b []byte, v *E) error {
			return guard("decode record from "+what, func() (err error) {
				*v, err = f(b)
				return err
			})
		}, -1, nil
	}
	cd, err := codec.For[E]()
	if err != nil {
		return nil, 0, err
	}
	return cd.Decode, cd.Size(), nil
}

// single sends each value on its own. With a buffered C() it decodes a
// short run of values (at most the buffer, at most 64) before sending them
// one after another: a consumer that keeps up is woken once per run
// instead of once per value, which is what a goroutine hand-off costs.
// The run is sent as soon as the map is empty, so a lone value waits for
// nothing. With an unbuffered C() each value is sent as soon as it is
// decoded: the pump holds at most one.
type single[E any] struct {
	out  chan E
	pend []E // decoded, not yet sent; cap is the run length (0: none)
	v    E
	p    chans.Policy
	n    *counters
}

func (s *single[E]) slot() *E {
	if cap(s.pend) == 0 {
		return &s.v
	}
	return &s.pend[:len(s.pend)+1][len(s.pend)]
}

func (s *single[E]) commit(ctx context.Context) error {
	if cap(s.pend) == 0 {
		var zero E
		v := s.v
		s.v = zero // a decoder may reuse what the slot points to
		return s.send(ctx, v)
	}
	s.pend = s.pend[:len(s.pend)+1]
	if len(s.pend) == cap(s.pend) {
		return s.flush(ctx)
	}
	return nil
}

func (s *single[E]) flush(ctx context.Context) error {
	for i, v := range s.pend {
		if err := s.send(ctx, v); err != nil {
			s.n.n.Dropped += uint64(len(s.pend) - i - 1)
			clear(s.pend)
			s.pend = s.pend[:0]
			return err
		}
	}
	clear(s.pend) // a decoder may reuse what the slots point to
	s.pend = s.pend[:0]
	return nil
}

func (s *single[E]) send(ctx context.Context, v E) error {
	select {
	case s.out <- v:
		s.n.n.Delivered++
		return nil
	default:
	}
	if s.p == chans.Block {
		s.n.publish()
	}
	sent := true
	_, err := chans.OfferFunc(ctx, s.out, v, s.p, func(_ E, evicted bool) {
		s.n.n.Dropped++
		if evicted {
			s.n.n.Delivered--
		} else {
			sent = false
		}
	})
	if err != nil {
		s.n.n.Dropped++
		return err
	}
	if sent {
		s.n.n.Delivered++
	}
	return nil
}

func (s *single[E]) discard() {
	s.n.n.Dropped += uint64(len(s.pend))
	s.pend = s.pend[:0]
}

func (s *single[E]) close() { close(s.out) }

// batcher sends values in batches of up to size, flushed early when the map
// is empty or the oldest value reaches age.
type batcher[E any] struct {
	out   chan []E
	free  chan []E // batches handed back by Recycle
	cur   []E
	size  int
	age   time.Duration
	start time.Time
	p     chans.Policy
	n     *counters
}

func (b *batcher[E]) slot() *E {
	if b.cur == nil {
		select {
		case b.cur = <-b.free:
			b.cur = b.cur[:0]
		default:
			b.cur = make([]E, 0, b.size)
		}
		b.start = time.Now()
	}
	return &b.cur[:len(b.cur)+1][len(b.cur)]
}

func (b *batcher[E]) commit(ctx context.Context) error {
	b.cur = b.cur[:len(b.cur)+1]
	// The age is checked every 64 records: a batch only grows old when
	// records trickle in without ever emptying the ring, and the clock
	// costs as much as reading a record.
	if l := len(b.cur); l == b.size || (l%64 == 0 && time.Since(b.start) >= b.age) {
		return b.flush(ctx)
	}
	return nil
}

func (b *batcher[E]) flush(ctx context.Context) error {
	batch := b.cur
	if len(batch) == 0 {
		return nil
	}
	b.cur = nil
	select {
	case b.out <- batch:
		b.n.n.Delivered += uint64(len(batch))
		return nil
	default:
	}
	if b.p == chans.Block {
		b.n.publish()
	}
	sent := true
	_, err := chans.OfferFunc(ctx, b.out, batch, b.p, func(d []E, evicted bool) {
		b.n.n.Dropped += uint64(len(d))
		if evicted {
			b.n.n.Delivered -= uint64(len(d))
		} else {
			sent = false
		}
		b.put(d)
	})
	if err != nil {
		b.n.n.Dropped += uint64(len(batch))
		return err
	}
	if sent {
		b.n.n.Delivered += uint64(len(batch))
	}
	return nil
}

// put keeps a batch for reuse; it is called by the pump and by Recycle.
func (b *batcher[E]) put(d []E) {
	if cap(d) < b.size {
		return
	}
	select {
	case b.free <- d:
	default:
	}
}

func (b *batcher[E]) discard() {
	b.n.n.Dropped += uint64(len(b.cur))
	b.cur = nil
}

func (b *batcher[E]) close() { close(b.out) }

// newEmitter returns the single-value emitter of a source.
func newSingle[E any](c config, s *Source[E]) *single[E] {
	s.c = make(chan E, c.buffer)
	return &single[E]{out: s.c, pend: make([]E, 0, min(c.buffer, 64)), p: c.overflow, n: &s.h.cnt}
}

// newBatcher returns the batch emitter of a source, with Recycle wired up.
func newBatcher[E any](c config, s *Source[[]E]) *batcher[E] {
	s.c = make(chan []E, c.buffer)
	b := &batcher[E]{
		out:  s.c,
		free: make(chan []E, c.buffer+4),
		size: c.batchSize,
		age:  c.batchAge,
		p:    c.overflow,
		n:    &s.h.cnt,
	}
	s.recycle = b.put
	return b
}
