package pump

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/codec"
	"github.com/bpfchan/bpfchan/internal/netpoll"
	"github.com/bpfchan/bpfchan/internal/ringread"
)

// RingBuf starts a pump that reads the ring buffer map m and sends each
// record, decoded into T, on C(). T must have a fixed binary size equal to
// the records' (a record of another size is counted in Stats.DecodeErrors),
// unless WithDecoder is given.
//
// An idle pump parks on a channel: it holds no OS thread and no timer; the
// process's one waiting goroutine wakes it for a record, and looks at the
// ring's positions every drain interval for records written with
// BPF_RB_NO_WAKEUP (WithDrainInterval; DefaultDrainInterval). Only one pump
// may read a ring at a time (ErrBusy); several consumers share its C().
//
// Options: WithBuffer, WithOverflow, WithDecoder, WithDrainInterval.
func RingBuf[T any](ctx context.Context, m *ebpf.Map, opts ...Option) (*Source[T], error) {
	const what = "ring buffer pump"
	c, f, dec, err := openRing[T](ctx, what, m, ringOpts, opts)
	if err != nil {
		return nil, err
	}
	s := &Source[T]{}
	start(ctx, c, f, dec, newSingle(c, s), s)
	return s, nil
}

// RingBufBatches is RingBuf delivering slices of up to the batch size
// (WithBatch; default 256 records). A batch is sent when it is full, when
// the ring is empty, or when its oldest record reaches the batch age
// (default 1 ms). A received batch belongs to the receiver; handing it back
// with Source.Recycle lets the pump reuse it (no allocation per batch).
func RingBufBatches[T any](ctx context.Context, m *ebpf.Map, opts ...Option) (*Source[[]T], error) {
	const what = "ring buffer batch pump"
	c, f, dec, err := openRing[T](ctx, what, m, batchOpts, opts)
	if err != nil {
		return nil, err
	}
	s := &Source[[]T]{}
	start(ctx, c, f, dec, newBatcher(c, s), s)
	return s, nil
}

func openRing[T any](ctx context.Context, what string, m *ebpf.Map, accepted []string, opts []Option) (config, *ringFeed, func([]byte, *T) error, error) {
	r, err := openReader[T](ctx, what, m, ebpf.RingBuf, accepted, opts)
	if err != nil {
		return r.c, nil, nil, err
	}
	cd, err := codec.For[T]()
	inPlace := r.c.decoder == nil && err == nil && cd.ReadOnly()
	f, err := newRingFeed(r.mi, r.c.drain, r.c.drain, !inPlace)
	if err != nil {
		r.release()
		r.mi.m.Close()
		return r.c, nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	f.release = r.release
	return r.c, f, r.dec, nil
}

// ringFeed reads a ring buffer through its shared memory (internal/ringread:
// records decoded in place, no syscall to find the ring empty) and waits
// for it through the process's one waiting goroutine (internal/netpoll).
type ringFeed struct {
	m    *ebpf.Map // the pump's clone
	name string
	rd   *ringread.Reader
	reg  *netpoll.Reg

	// parked is the read position when the pump last went to wait: the
	// loop's periodic look wakes the pump when the producer is past it.
	parked atomic.Uint64

	release func() // gives up the map's reader registration
	acker   *acker // RingBufAcked's: stopped before the ring is unmapped

	// copyOut: records are copied out of the ring before they are decoded.
	// The ring is mapped read-only and overwritten once read: the codec's
	// decoders of fixed-size types and []byte read it in place (they only
	// read, and copy what they keep); a user's decoder, or a type's
	// UnmarshalBinary, gets a copy it may write to, valid until the next
	// record.
	copyOut bool
	buf     []byte

	held bool // graceful stop: read only up to until
	// until is the ring's producer position when hold was called, and
	// before that a position the reader never takes.
	until uint64
}

// newRingFeed maps mi's ring and registers its descriptor with the
// process's waiting goroutine; the periodic look comes from first after
// parking, doubling to drain (first == drain: a fixed period).
func newRingFeed(mi mapInfo, first, drain time.Duration, copyOut bool) (*ringFeed, error) {
	rd, err := ringread.Open(mi.m)
	if err != nil {
		return nil, fmt.Errorf("open reader on %s: %w", mi.name, err)
	}
	f := &ringFeed{m: mi.m, name: mi.name, rd: rd, copyOut: copyOut, until: ^uint64(0)} // Pos is never ^0
	f.parked.Store(rd.Pos())
	f.reg, err = netpoll.Register(netpoll.Spec{
		FD:     mi.m.FD(),
		Events: unix.EPOLLIN,
		Ready:  func() bool { return f.rd.Head() != f.parked.Load() },
		Min:    min(first, drain),
		Max:    drain,
	})
	if err != nil {
		rd.Close()
		return nil, fmt.Errorf("wait for %s: %w", mi.name, err)
	}
	return f, nil
}

func (f *ringFeed) next() ([]byte, bool, error) {
	rec, ok, err := f.rd.NextBefore(f.until)
	switch {
	case err != nil:
		return nil, false, fmt.Errorf("read %s: %w", f.name, err)
	case ok && f.copyOut:
		f.buf = append(f.buf[:0], rec...)
		rec = f.buf
	}
	return rec, ok, nil
}

func (f *ringFeed) wait(ctx context.Context) error {
	if f.acker != nil {
		f.acker.settle(f.rd.Pos())
	}
	// Before sleeping, linger a moment with the position unpublished: a
	// live producer has usually written more by then, and it sends no
	// wake-up while we have not published that we caught up.
	if f.rd.Linger() {
		return nil
	}
	f.rd.Publish()
	return parkRing(ctx, f.reg, f.rd, &f.parked, f.acker != nil)
}

// parkRing waits for a ring's next record: it arms rd's registration, looks
// once more (a record committed before the arm woke nobody), and parks.
// reset starts the periodic looks at their shortest period again.
func parkRing(ctx context.Context, reg *netpoll.Reg, rd *ringread.Reader, parked *atomic.Uint64, reset bool) error {
	parked.Store(rd.Pos())
	reg.Arm(reset)
	if rd.Ready() {
		reg.Disarm()
		return nil
	}
	return reg.Park(ctx, nil)
}

func (f *ringFeed) interrupt() { f.reg.Interrupt() }

// hold limits the rest of the drain to the records the ring holds now
// (reserved ones included: they are delivered once committed).
func (f *ringFeed) hold() { f.held, f.until = true, f.rd.Head() }

// pending: the drain stopped short of until at a record still reserved.
func (f *ringFeed) pending() bool { return f.held && f.rd.Pos() != f.until }

// close unregisters the ring before it unmaps it (the waiting goroutine's
// look reads the producer's page), then closes the clone.
func (f *ringFeed) close() error {
	defer f.release()
	err := f.reg.Close()
	if f.acker != nil {
		f.acker.stop()
	}
	return firstErr(err, f.rd.Close(), f.m.Close())
}
