package pump

import (
	"context"
	"errors"
	"time"
	"unsafe"

	"github.com/bpfchan/bpfchan/chans"
	"github.com/bpfchan/bpfchan/internal/backoff"
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

// Done returns a channel that is closed when the pump has stopped (Wait
// then returns at once).
func (s *Source[T]) Done() <-chan struct{} { return s.h.Done() }

// Close stops the pump gracefully: what the kernel buffer already holds
// when the pump sees Close is delivered on C() (so a consumer must keep
// receiving), records produced after that are left in the map, then C() is
// closed. A ring record reserved before Close is waited for until its
// producer commits or discards it, however long that takes; cancelling the
// constructor's ctx bounds the wait. It returns Wait's result.
func (s *Source[T]) Close() error { return s.h.Close() }

// Stats returns the pump's counters. While the pump runs they are a recent
// snapshot (published whenever the pump is about to block); after it stopped
// they are final and Received == Delivered + Dropped + DecodeErrors.
func (s *Source[T]) Stats() Stats { return s.h.Stats() }

// Recycle hands a batch received from a RingBufBatches source back to the
// pump, which will reuse its memory for a later batch: the zero-allocation
// path. The caller must not touch v afterwards, nor memory its values
// point to (the bytes of a []byte value are reused too). Without Recycle
// every batch is freshly allocated and belongs to its receiver. On other
// sources Recycle does nothing.
func (s *Source[T]) Recycle(v T) {
	if s.recycle != nil {
		s.recycle(v)
	}
}

// Compile-time checks of the chans contracts.
var (
	_ chans.Receiver[int] = (*Source[int])(nil)
	_ chans.Sender[int]   = (*Sink[int])(nil)
)

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
	// hold starts a graceful stop: from now on next returns only what the
	// map holds at this moment, then reports empty, so a producer that
	// keeps writing new records cannot keep Close from finishing (one
	// that keeps a record reserved can: see pending).
	hold()
	// pending reports, after hold and an empty next, that what the map
	// held at hold is not all read yet: a ring record reserved but not yet
	// committed, a pop the kernel refused (EBUSY). The loop then pauses
	// and looks again instead of ending.
	pending() bool
	// close releases the feed's resources after the loop has exited.
	close() error
}

var errInterrupted = errors.New("interrupted")

// emitter turns decoded values into sends on C(): one value per send, or
// batches. The loop decodes straight into the emitter's free slots, a run
// of them at a time, so it makes no call per record.
type emitter[E any] interface {
	// room returns the free slots the next records are decoded into: at
	// least one, at most 64.
	room() []E
	// add records that the first k slots of the last room hold values.
	add(k int)
	// due sends what is due: a full batch, an old one, a full run.
	due(ctx context.Context) error
	// flush sends everything held; called when the map is empty.
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
	direct int // E's size when it is copied as raw memory, else 0
	em     emitter[E]
}

// run drains the feed, then waits for more, until a graceful stop has
// drained what the map held when the pump saw Close, ctx is done, or the
// feed fails.
func (p *pump[E]) run(ctx context.Context) (err error) {
	n := &p.h.cnt.n
	held := false // hold was called: the next empty feed not pending ends the pump
	fresh := 0    // records looked for since Stats were last published
	// The pauses of a held drain that is pending: from 10 µs, doubling to
	// 1 ms (a reserved ring record is usually committed within
	// microseconds; the kernel's resilient lock gives up after up to
	// 250 ms).
	settle := backoff.Sleeper{Backoff: backoff.Backoff{Min: 10 * time.Microsecond, Max: time.Millisecond}}
	var settled uint64 // Received at the last pause
	defer func() {
		p.em.discard()
		p.em.close()
	}()
	for {
		for {
			if !held && p.h.closing.Load() {
				// Seen in the inner loop too: a producer that keeps the
				// map from ever being empty must not delay Close.
				p.feed.hold()
				held = true
			}
			room := p.em.room()
			k, empty, err := p.fill(room, n)
			p.em.add(k)
			if err != nil {
				return err
			}
			if err := p.em.due(ctx); err != nil {
				return err
			}
			// About once per 64 records, so Stats stay fresh under
			// sustained load (the map never empty, the pump never blocked).
			if fresh += len(room); fresh >= 64 {
				p.h.cnt.publish()
				fresh = 0
			}
			if empty {
				break
			}
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
		}
		if err := p.em.flush(ctx); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if held {
			if !p.feed.pending() {
				return nil // what the map held at Close is delivered
			}
			if n.Received != settled {
				settle.Reset() // the last pause brought records
				settled = n.Received
			}
			p.h.cnt.publish()
			if err := p.pause(ctx, &settle); err != nil {
				return err
			}
			continue
		}
		if p.h.closing.Load() {
			continue // hold, then drain what the map holds now
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

// pause waits a moment for a pending graceful drain. Only ctx cuts it
// short (feed.wait would not wait: Close has interrupted it for good).
func (p *pump[E]) pause(ctx context.Context, s *backoff.Sleeper) error {
	if s.Sleep(ctx, nil, nil) == backoff.Cancelled {
		return context.Cause(ctx)
	}
	return nil
}

// fill decodes records into room until it is full (k == len(room)) or the
// feed is empty. A record that fails to decode is counted and its slot
// reused.
func (p *pump[E]) fill(room []E, n *Stats) (k int, empty bool, err error) {
	for k < len(room) {
		rec, ok, err := p.feed.next()
		if err != nil {
			return k, false, err
		}
		if !ok {
			return k, true, nil
		}
		n.Received++
		if p.direct > 0 && len(rec) == p.direct {
			// The codec's direct copy, without a call per record.
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&room[k])), p.direct), rec)
		} else if err := p.decode(rec, &room[k]); err != nil {
			n.DecodeErrors++
			if errors.Is(err, ErrPanic) {
				return k, false, err
			}
			continue
		}
		k++
	}
	return k, false, nil
}

// start wires a feed and an emitter into a running source.
func start[E, T any](ctx context.Context, c config, f feed, dec func([]byte, *E) error, em emitter[E], s *Source[T]) {
	p := &pump[E]{h: &s.h, feed: f, decode: dec, em: em}
	if cd, err := codec.For[E](); err == nil && cd.Direct() && c.decoder == nil {
		p.direct = cd.Size()
	}
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
// nothing. With an unbuffered C() the run is one value: the pump holds at
// most one.
type single[E any] struct {
	out  chan E
	pend []E // decoded, not yet sent; cap is the run length
	p    chans.Policy
	n    *counters
}

// free is the room left in C()'s buffer once the values in hand are sent.
func (s *single[E]) free() int { return cap(s.out) - len(s.out) - len(s.pend) }

// room is limited to the free space of C()'s buffer, so the pump takes out
// of the map only what a receiver is likely to take soon: with C() full it
// holds one value in hand, and none more while it holds any (due then
// sends them first).
func (s *single[E]) room() []E {
	l := len(s.pend)
	n := min(cap(s.pend)-l, s.free())
	if n <= 0 {
		if l > 0 {
			return s.pend[l:l]
		}
		n = 1
	}
	return s.pend[l : l+n]
}
func (s *single[E]) add(k int) { s.pend = s.pend[:len(s.pend)+k] }

func (s *single[E]) due(ctx context.Context) error {
	if len(s.pend) == cap(s.pend) || (len(s.pend) > 0 && s.free() <= 0) {
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
	return offer(ctx, s.out, v, 1, s.p, s.n, func(E) uint64 { return 1 })
}

// offer sends v, which holds w values, on out under policy p, keeping the
// counters: Delivered when sent, Dropped when the policy drops it or ctx
// ends the wait, and for a value DropOldest evicts from out's buffer (w of
// the evicted one, by dropped, which may also recycle it) Delivered is
// taken back and Dropped counted. The counters are published before a
// blocking send, so Stats are fresh while the pump waits for its consumer.
func offer[V any](ctx context.Context, out chan V, v V, w uint64, p chans.Policy, n *counters, dropped func(V) uint64) error {
	select {
	case out <- v:
		n.n.Delivered += w
		return nil
	default:
	}
	if p == chans.Block {
		n.publish()
	}
	sent := true
	_, err := chans.OfferFunc(ctx, out, v, p, func(d V, evicted bool) {
		dw := dropped(d)
		n.n.Dropped += dw
		if evicted {
			n.n.Delivered -= dw
		} else {
			sent = false
		}
	})
	if err != nil {
		n.n.Dropped += w
		return err
	}
	if sent {
		n.n.Delivered += w
	}
	return nil
}

func (s *single[E]) discard() {
	s.n.n.Dropped += uint64(len(s.pend))
	clear(s.pend)
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

func (b *batcher[E]) room() []E {
	if b.cur == nil {
		select {
		case b.cur = <-b.free:
			b.cur = b.cur[:0]
		default:
			b.cur = make([]E, 0, b.size)
		}
	}
	l := len(b.cur)
	return b.cur[l:min(b.size, l+64)]
}

func (b *batcher[E]) add(k int) {
	if len(b.cur) == 0 && k > 0 {
		// The batch's age runs from its first value, not from when its
		// slot was handed out (maybe before an idle period).
		b.start = time.Now()
	}
	b.cur = b.cur[:len(b.cur)+k]
}

func (b *batcher[E]) due(ctx context.Context) error {
	// The age is looked at once per run of up to 64 records: a batch only
	// grows old when records trickle in without ever emptying the ring,
	// and the clock costs as much as reading a record.
	if l := len(b.cur); l == b.size || (l > 0 && time.Since(b.start) >= b.age) {
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
	return offer(ctx, b.out, batch, uint64(len(batch)), b.p, b.n, func(d []E) uint64 {
		b.put(d)
		return uint64(len(d))
	})
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
	return &single[E]{out: s.c, pend: make([]E, 0, max(1, min(c.buffer, 64))), p: c.overflow, n: &s.h.cnt}
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
