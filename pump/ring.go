package pump

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/codec"
	"github.com/bpfchan/bpfchan/internal/netpoll"
	"github.com/bpfchan/bpfchan/internal/ringread"
)

// RingBuf starts a pump that reads the ring buffer map m and sends each
// record, decoded into T, on C(). T must have a fixed binary size equal to
// the records' (a record of another size is counted in Stats.DecodeErrors),
// unless WithDecoder is given.
//
// An idle pump parks in Go's netpoller: it holds no OS thread, and wakes
// only for the periodic drain that picks up records written with
// BPF_RB_NO_WAKEUP (WithDrainInterval; by default 10 times a second, a
// look at the ring's positions). Only one pump may read a ring at a time
// (ErrBusy); several consumers share its C().
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
	c, dec, release := r.c, r.dec, r.release
	cd, err := codec.For[T]()
	inPlace := c.decoder == nil && err == nil && cd.ReadOnly()
	f, err := newRingFeed(m, r.mi, c.drain, !inPlace)
	if err != nil {
		release()
		return c, nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	f.release = release
	return c, f, dec, nil
}

// ringFeed reads a ring buffer through its shared memory (internal/ringread:
// records decoded in place, no syscall to find the ring empty) and waits
// for it in the netpoller.
type ringFeed struct {
	m     *ebpf.Map
	name  string
	rd    *ringread.Reader
	w     *netpoll.Waiter
	ready func() bool
	drain time.Duration

	release func() // gives up the map's reader registration

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
	until uintptr
}

func newRingFeed(m *ebpf.Map, mi mapInfo, drain time.Duration, copyOut bool) (*ringFeed, error) {
	rd, err := ringread.Open(m)
	if err != nil {
		return nil, fmt.Errorf("open reader on %s: %w", mi.name, err)
	}
	w, err := netpoll.New(m.FD(), mi.name)
	if err != nil {
		rd.Close()
		return nil, err
	}
	f := &ringFeed{m: m, name: mi.name, rd: rd, w: w, drain: drain, copyOut: copyOut, until: ^uintptr(0)} // Pos is never ^0
	f.ready = f.rd.Ready
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

func (f *ringFeed) wait(context.Context) error {
	// Before sleeping, linger a moment with the position unpublished: a
	// live producer has usually written more by then, and it sends no
	// wake-up while we have not published that we caught up.
	if f.rd.Linger() {
		return nil
	}
	f.rd.Publish()
	ok, err := f.w.Wait(f.ready, f.drain)
	switch {
	case errors.Is(err, netpoll.ErrInterrupted):
		return errInterrupted
	case err != nil:
		return fmt.Errorf("wait for %s: %w", f.name, err)
	case !ok && f.m.FD() < 0:
		// The periodic drain is also where a ring whose map the caller
		// closed under the pump is noticed.
		return fmt.Errorf("read %s: %w", f.name, errClosed)
	}
	return nil
}

func (f *ringFeed) interrupt() { f.w.Interrupt() }

// hold limits the rest of the drain to the records the ring holds now
// (reserved ones included: they are delivered once committed).
func (f *ringFeed) hold() { f.held, f.until = true, f.rd.Head() }

// pending: the drain stopped short of until at a record still reserved.
func (f *ringFeed) pending() bool { return f.held && f.rd.Pos() != f.until }

func (f *ringFeed) close() error {
	defer f.release()
	return errors.Join(f.w.Close(), f.rd.Close())
}
