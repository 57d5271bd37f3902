package pump

import (
	"context"
	"errors"
	"unsafe"

	"github.com/bpfchan/bpfchan/internal/codec"
)

// feed is where a source's records come from: one implementation per kind
// of map (ring buffer, perf buffer, queue or stack poller). The one loop in
// pump.run drives them all.
type feed interface {
	// next returns the next record, or ok=false when the map has none now.
	// The bytes are valid until the next call.
	next() (rec []byte, ok bool, err error)
	// wait blocks until next may find a record. It returns nil to look
	// again (also after interrupt), or the error that stops the pump
	// (context.Cause(ctx) when ctx is done).
	wait(ctx context.Context) error
	// interrupt makes the current wait return at once, or the next one if
	// none is running. It is called from other goroutines.
	interrupt()
	// hold starts a graceful stop: from now on next returns only what the
	// map holds at this moment, then reports empty, so a producer that
	// keeps writing new records cannot keep Close from finishing (one
	// that keeps a record reserved can: see pending).
	hold()
	// pending reports, after hold and an empty next, that what the map
	// held at hold is not all read yet: a ring record reserved but not yet
	// committed, a pop the kernel refused (EBUSY). The loop then waits
	// (a commit or the periodic look wakes it) and looks again instead of
	// ending.
	pending() bool
	// close releases the feed's resources, the pump's clone of the map
	// included, after the loop has exited.
	close() error
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
// feed fails. Before C() is closed, what the pump held is counted dropped,
// after an abort what sits in C()'s buffer is taken back (rule 4), and the
// final Stats are published (rule 5).
func (p *pump[E]) run(ctx context.Context) (err error) {
	n := &p.h.cnt.n
	held := false // hold was called: the next empty feed not pending ends the pump
	fresh := 0    // records looked for since Stats were last published
	defer func() {
		p.em.discard()
		if err != nil && ctx.Err() != nil {
			p.em.takeBack()
		}
		p.h.cnt.publish()
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
		if held && !p.feed.pending() {
			return nil // what the map held at Close is delivered
		}
		if !held && p.h.closing.Load() {
			continue // hold, then drain what the map holds now
		}
		// Idle, or a held drain waiting for a reserved record's commit (or
		// a pop the kernel refused): wait for the map.
		p.h.cnt.publish()
		if err := p.feed.wait(ctx); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
	}
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
			return nil, 0, errWrongFunc[E](what, "WithDecoder", c.decoder)
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
