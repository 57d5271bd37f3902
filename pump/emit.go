package pump

import (
	"context"
	"time"

	"github.com/bpfchan/bpfchan/chans"
)

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
	// takeBack receives back what sits in C()'s buffer, which no receiver
	// took, and counts it dropped instead of delivered: after an abort,
	// Delivered is exactly what receivers got (rule 4).
	takeBack()
	// close closes C().
	close()
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

func (s *single[E]) takeBack() {
	for {
		select {
		case <-s.out:
			s.n.n.Delivered--
			s.n.n.Dropped++
		default:
			return
		}
	}
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

	// For RingBufAcked: sending, when set, is told of each batch before it
	// is offered; kept means that what is not delivered stays in the ring
	// (a stop's leftovers are uncounted, not dropped).
	sending func([]E)
	kept    bool
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
	if l := len(b.cur); l == b.size || (l > 0 && b.age > 0 && time.Since(b.start) >= b.age) {
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
	if b.sending != nil {
		b.sending(batch)
	}
	err := offer(ctx, b.out, batch, uint64(len(batch)), b.p, b.n, func(d []E) uint64 {
		b.put(d)
		return uint64(len(d))
	})
	if err != nil && b.kept {
		b.n.n.Dropped -= uint64(len(batch))
		b.n.n.Received -= uint64(len(batch))
	}
	return err
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
	if b.kept {
		b.n.n.Received -= uint64(len(b.cur))
	} else {
		b.n.n.Dropped += uint64(len(b.cur))
	}
	b.cur = nil
}

func (b *batcher[E]) takeBack() {
	for {
		select {
		case d := <-b.out:
			b.n.n.Delivered -= uint64(len(d))
			if b.kept {
				b.n.n.Received -= uint64(len(d))
			} else {
				b.n.n.Dropped += uint64(len(d))
			}
		default:
			return
		}
	}
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
