package pump

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/chans"
	"github.com/bpfchan/bpfchan/internal/codec"
	"github.com/bpfchan/bpfchan/internal/ringread"
)

// Record is a ring-buffer record delivered by RingBufAcked: its value and
// its position in the ring.
type Record[T any] struct {
	// Pos is the record's position in the ring's position space (the
	// offset of its header, counted from the map's creation): unique for
	// the life of the map and increasing, so the same record redelivered
	// by a later source has the same Pos.
	Pos   uint64
	Value T
}

// AckSource is the durable ring-buffer source made by RingBufAcked: a
// record's space goes back to the kernel only when the receiver
// acknowledges it. It implements chans.Receiver[[]Record[T]].
type AckSource[T any] struct {
	h      handle
	c      chan []Record[T]
	stop   context.CancelCauseFunc
	a      *acker
	recyc  func([]Record[T])
	ringID string
}

// RingBufAcked starts a pump that reads the ring buffer map m like
// RingBufBatches, except that the consumer position it publishes to the
// kernel is the end of the acknowledged prefix, not of what it has read: a
// delivered record stays in the ring, occupying its space, until Ack
// covers it. When the source stops (Close, a cancel, a crash of the whole
// process) every delivered record not yet acknowledged is still in the
// ring, and the next RingBufAcked on the same map (in this process, or in
// another one through a pinned map) delivers it again with the same Pos,
// oldest first, and skips nothing committed after it.
//
// The ring is the durable buffer, so Close is prompt: it does not deliver
// the rest of the ring (unlike other sources); it takes back what sits in
// C()'s buffer and returns. An AckSource never drops: a record taken back
// stays in the ring and is not counted, so Received == Delivered +
// DecodeErrors and Dropped is 0. A record of the wrong size is counted in
// DecodeErrors and released with the prefix around it.
//
// A receiver that is slow to acknowledge fills the ring, and the kernel's
// producers see the ring full (their reserve fails), which their own
// counters show; overflow policies other than chans.Block are refused
// (ErrOption). Only one reader of any kind may read a ring at a time in a
// process (ErrBusy).
//
// Options: WithBuffer, WithBatch, WithDecoder, WithDrainInterval,
// WithOverflow(chans.Block).
func RingBufAcked[T any](ctx context.Context, m *ebpf.Map, opts ...Option) (*AckSource[T], error) {
	return ringBufAcked[T](ctx, m, ackedFirstLook, opts)
}

// ackedFirstLook is how long after parking an acked pump first looks at the
// ring by itself. While acknowledgements are outstanding the kernel sends
// no wake-up for a new record (it is not at the published position): the
// looks start this soon and double up to the drain interval, so a receiver
// that acknowledges only once more records came is not left waiting for the
// drain. Tests pass an hour to ringBufAcked, so only an Ack or the kernel's
// wake-up can make the pump look.
const ackedFirstLook = time.Millisecond

func ringBufAcked[T any](ctx context.Context, m *ebpf.Map, firstLook time.Duration, opts []Option) (*AckSource[T], error) {
	const what = "acked ring buffer pump"
	r, err := openReader[T](ctx, what, m, ebpf.RingBuf, ackedOpts, opts)
	if err != nil {
		return nil, err
	}
	if r.c.overflow != chans.Block {
		r.release()
		r.mi.m.Close()
		return nil, fmt.Errorf("%s: WithOverflow(%v): an acked source never drops (the ring is its buffer): %w", what, r.c.overflow, ErrOption)
	}
	bootID, err := bootID()
	if err == nil {
		var f *ringFeed
		if f, err = newRingFeed(r.mi, firstLook, r.c.drain, true); err == nil {
			f.release = r.release
			return startAcked(ctx, r, f, bootID), nil
		}
	}
	r.release()
	r.mi.m.Close()
	return nil, fmt.Errorf("%s: %w", what, err)
}

func startAcked[T any](ctx context.Context, r reader[T], f *ringFeed, bootID string) *AckSource[T] {
	f.rd.Manual()
	f.copyOut = false // every built-in decode copies; a user's gets a copy below
	a := &acker{rd: f.rd, feed: f, name: r.mi.name, acked: f.rd.Pos(), produced: f.rd.Pos()}
	f.acker = a
	pctx, stop := context.WithCancelCause(ctx)
	s := &AckSource[T]{a: a, stop: stop, ringID: fmt.Sprintf("%s:%d", bootID, r.mi.id)}
	s.c = make(chan []Record[T], r.c.buffer)
	b := &batcher[Record[T]]{
		out:  s.c,
		free: make(chan []Record[T], r.c.buffer+4),
		size: r.c.batchSize,
		age:  r.c.batchAge,
		p:    chans.Block,
		n:    &s.h.cnt,
		kept: true,
		sending: func(batch []Record[T]) {
			// Before the batch is offered, so an Ack from its receiver
			// never races it.
			a.offered(batch[len(batch)-1].Pos, f.rd.Pos(), len(batch))
		},
	}
	s.recyc = b.put
	p := &pump[Record[T]]{h: &s.h, feed: f, em: ackedEmitter[Record[T]]{b, a}, decode: recordDecoder(r, f)}
	s.h.start(pctx, f.interrupt, func(ctx context.Context) error {
		defer stop(nil) // release pctx from its parent once the pump is done
		err := p.run(ctx)
		if errors.Is(err, errClosedPromptly) {
			return nil
		}
		return err
	}, f.close)
	return s
}

// ackedEmitter is the batcher of an AckSource, which stops its acker
// before it closes C(): a receiver whose range over C() has ended reads a
// final Acked (rule 5), and its later Acks find the source stopped.
type ackedEmitter[E any] struct {
	*batcher[E]
	a *acker
}

func (e ackedEmitter[E]) close() {
	e.a.stop()
	e.batcher.close()
}

// errClosedPromptly is the cause an AckSource's Close cancels its pump
// with: stop now, the ring keeps the rest.
var errClosedPromptly = errors.New("acked source closed")

// recordDecoder decodes a record into a Record: its position from the feed,
// its value as r decodes it. A user's decoder gets a copy of the bytes it
// may keep until the next record; the codec's decoders copy.
func recordDecoder[T any](r reader[T], f *ringFeed) func([]byte, *Record[T]) error {
	dec := r.dec
	if cd, err := codec.For[T](); err == nil && cd.Direct() && r.c.decoder == nil {
		size := cd.Size()
		return func(b []byte, v *Record[T]) error {
			v.Pos = f.rd.At()
			if len(b) != size {
				f.acker.decodeFailed(v.Pos)
				return fmt.Errorf("decode %s: %d bytes, want %d: %w", cd, len(b), size, ErrSize)
			}
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&v.Value)), size), b)
			return nil
		}
	}
	if r.c.decoder != nil || !codecReadOnly[T]() {
		f.copyOut = true
	}
	return func(b []byte, v *Record[T]) error {
		v.Pos = f.rd.At()
		err := dec(b, &v.Value)
		if err != nil {
			f.acker.decodeFailed(v.Pos)
		}
		return err
	}
}

func codecReadOnly[T any]() bool {
	cd, err := codec.For[T]()
	return err == nil && cd.ReadOnly()
}

// C returns the channel of batches. It is closed when the pump stops.
func (s *AckSource[T]) C() <-chan []Record[T] { return s.c }

// Wait blocks until the pump's goroutine has exited: nil after Close,
// context.Cause(ctx) after a cancel, else the error that stopped it.
func (s *AckSource[T]) Wait() error { return s.h.Wait() }

// Done returns a channel closed when the pump has stopped.
func (s *AckSource[T]) Done() <-chan struct{} { return s.h.Done() }

// Close stops the pump promptly: it takes back what sits in C()'s buffer
// (it stays in the ring, uncounted), publishes every Ack made before it
// returns (Acks are published at once anyway), closes C() and returns nil.
// What was not delivered or not acknowledged waits in the ring for the
// next reader. Unlike the other sources' Close, it never waits for a
// receiver.
func (s *AckSource[T]) Close() error {
	s.stop(errClosedPromptly)
	return s.h.Wait()
}

// Stats returns the pump's counters; Acked counts the delivered records
// released by Ack.
func (s *AckSource[T]) Stats() Stats {
	st := s.h.Stats()
	st.Acked = s.a.count.Load()
	return st
}

// Ack releases every delivered record up to and including the one at pos:
// their space goes back to the kernel at once. It is cumulative and
// idempotent: a pos below an earlier Ack's, or below this source's first
// record, does nothing. A pos that is not the Pos of a delivered record is
// refused with an error naming it (a record counts as delivered from the
// moment the pump offers its batch on C(), so a receiver never races the
// pump's bookkeeping). After the source stopped, Ack returns
// an error matching maps.ErrClosed (nil if an earlier Ack covered pos).
// It is safe for concurrent use.
func (s *AckSource[T]) Ack(pos uint64) error { return s.a.ack(pos) }

// RingID returns the ring's identity: the kernel's boot ID and the map's
// ID, unique among all maps of a machine since boot and stable while the
// map lives (a pinned map keeps it across restarts of its reader).
func (s *AckSource[T]) RingID() string { return s.ringID }

// Positions returns the consumer position published to the kernel (the end
// of the acknowledged prefix) and the kernel's producer position now:
// produced - acked is how far the receiver lags, in bytes of the ring
// (headers and padding included). A forwarder that must wait until what
// the ring held at some moment is acknowledged waits until acked reaches
// that moment's produced. After the source stopped, the values at the stop.
func (s *AckSource[T]) Positions() (acked, produced uint64) { return s.a.positions() }

// Recycle hands a batch back for reuse once its records are acknowledged
// (or no longer needed): the zero-allocation path, as Source.Recycle. The
// caller must not touch b afterwards.
func (s *AckSource[T]) Recycle(b []Record[T]) { s.recyc(b) }

var _ chans.Receiver[[]Record[int]] = (*AckSource[int])(nil)

// acker is what Ack shares with the pump: the reader's positions, under a
// lock that the pump's stop takes before it unmaps the ring.
type acker struct {
	rd   *ringread.Reader
	feed *ringFeed
	name string

	delivered atomic.Uint64 // Pos+1 of the last record handed to C(), 0 before the first
	read      atomic.Uint64 // the pump's read position when it last offered a batch or went to wait
	count     atomic.Uint64 // Stats.Acked

	mu       sync.Mutex
	acked    uint64   // the published consumer position: the end of the acked prefix
	produced uint64   // the producer position at the stop
	bad      []uint64 // positions of records that failed to decode, not yet released
	stopped  bool
	total    uint64        // records delivered so far
	marks    [16]batchMark // the latest batches offered, oldest at first
	first, n int           // marks in use: marks[first], ... (circular)
}

// batchMark is what Ack needs to release a delivered batch without walking
// its records again (their headers are cold in the cache by then): its last
// record's position, where the pump had read to when it offered the batch
// (every record before that is delivered, discarded or undecodable), and
// how many records were delivered up to it.
type batchMark struct{ last, end, total uint64 }

// offered records a batch about to be offered on C(): its last record's
// position, the pump's read position, and its length.
func (a *acker) offered(last, end uint64, n int) {
	a.read.Store(end)
	a.delivered.Store(last + 1)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total += uint64(n)
	if a.n == len(a.marks) { // forget the oldest: an Ack of it walks
		a.first = (a.first + 1) % len(a.marks)
		a.n--
	}
	a.marks[(a.first+a.n)%len(a.marks)] = batchMark{last, end, a.total}
	a.n++
}

// marked returns the mark of the batch whose last record is at pos, after
// forgetting the marks of batches already released. The caller holds mu.
func (a *acker) marked(pos uint64) (batchMark, bool) {
	for a.n > 0 {
		m := a.marks[a.first]
		if m.end > a.acked && m.last >= pos {
			return m, m.last == pos
		}
		a.first = (a.first + 1) % len(a.marks)
		a.n--
	}
	return batchMark{}, false
}

// ack publishes the end of the record at pos as the consumer position,
// after checking that pos is a delivered record's start.
func (a *acker) ack(pos uint64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if pos < a.acked {
		return nil // released already, or before this source's first record
	}
	if a.stopped {
		return fmt.Errorf("ack %d on %s: the source has stopped: %w", pos, a.name, errClosed)
	}
	if end := a.delivered.Load(); pos >= end {
		return fmt.Errorf("ack %d on %s: no record at %d was delivered", pos, a.name, pos)
	}
	if m, ok := a.marked(pos); ok {
		// The last record of a batch: everything up to where the pump had
		// read when it offered the batch is delivered (or never will be).
		a.acked = m.end
		for len(a.bad) > 0 && a.bad[0] < m.end {
			a.bad = a.bad[1:]
		}
		a.count.Store(m.total)
		a.published()
		return nil
	}
	// Walk the records from the acknowledged position to pos; change
	// nothing until pos proved to be a delivered record's.
	var n uint64
	at, bad := a.acked, a.bad
	for {
		if at > pos {
			return fmt.Errorf("ack %d on %s: not the position of a delivered record", pos, a.name)
		}
		next, discarded, err := a.rd.RecordAt(at)
		if err != nil {
			return fmt.Errorf("ack %d on %s: %w", pos, a.name, err)
		}
		undelivered := discarded || (len(bad) > 0 && bad[0] == at)
		if at == pos && undelivered {
			return fmt.Errorf("ack %d on %s: not the position of a delivered record (a record discarded or not decoded)", pos, a.name)
		}
		switch {
		case discarded:
		case undelivered:
			bad = bad[1:]
		default:
			n++
		}
		if at == pos {
			at = next
			break
		}
		at = next
	}
	a.acked, a.bad = at, bad
	a.count.Add(n)
	a.published()
	return nil
}

// published releases what follows the acknowledged prefix that no Ack will
// cover, publishes the consumer position, and wakes the pump if the
// producer is ahead of it. The caller holds mu.
func (a *acker) published() {
	a.skip(a.read.Load())
	a.rd.SetConsumer(a.acked)
	if a.rd.Head() != a.feed.parked.Load() {
		a.feed.reg.Wake() // the kernel wakes the pump only for a record at the published position
	}
}

// settle releases the records at the acknowledged position that no Ack
// will ever cover, because they were not delivered: discarded records and
// records that failed to decode, read before limit (the pump's read
// position). Without it such records at the ring's tail would keep their
// space, and a producer's next record would not be at the published
// position, so the kernel would not wake the pump for it. The pump calls
// it before it waits.
func (a *acker) settle(limit uint64) {
	a.read.Store(limit)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return
	}
	if a.skip(limit) {
		a.rd.SetConsumer(a.acked)
	}
}

// skip moves acked past the discarded and undecodable records that start
// it, before limit, and reports whether it moved. The caller holds mu.
func (a *acker) skip(limit uint64) bool {
	at := a.acked
	for at < limit {
		next, discarded, err := a.rd.RecordAt(at)
		switch {
		case err != nil:
		case discarded:
			at = next
			continue
		case len(a.bad) > 0 && a.bad[0] == at:
			a.bad = a.bad[1:]
			at = next
			continue
		}
		break
	}
	moved := at != a.acked
	a.acked = at
	return moved
}

func (a *acker) positions() (acked, produced uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return a.acked, a.produced
	}
	return a.acked, a.rd.Head()
}

// decodeFailed records that the record at pos failed to decode: Ack
// releases it with the prefix around it but does not count it acked.
func (a *acker) decodeFailed(pos uint64) {
	a.mu.Lock()
	a.bad = append(a.bad, pos)
	a.mu.Unlock()
}

// stop marks the acker stopped, before C() is closed (and so before the
// ring is unmapped): later Acks change nothing. Only the first call counts.
func (a *acker) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.stopped {
		a.stopped = true
		a.produced = a.rd.Head()
	}
}

// bootID is the kernel's boot ID, read once.
var bootID = sync.OnceValues(func() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("read the boot ID: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
})
