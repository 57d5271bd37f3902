package pump

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/codec"
	"github.com/bpfchan/bpfchan/internal/netpoll"
	"github.com/bpfchan/bpfchan/internal/ringread"
)

// UserRingBuf starts a pump that writes each value sent on C() as one
// record into the user ring buffer m (BPF_MAP_TYPE_USER_RINGBUF), for a BPF
// program to drain with bpf_user_ringbuf_drain. No syscall is made per
// value: records are written into the ring's shared memory, and each run
// of values that were already waiting in C() when the pump took the first
// (up to 256) is handed to the kernel with one store of the producer
// position. Stats.Delivered counts values so committed.
//
// A record is T's encoding: T's fixed binary size (a T whose record cannot
// fit the ring is refused at construction), a []byte or a
// BinaryMarshaler's bytes of any length, or WithEncoder's. A value whose
// encoding cannot fit the ring (or exceeds the 16 MiB - 1 a BPF dynptr
// holds) is skipped and counted in Stats.DecodeErrors.
//
// When the ring has no room for a record, the pump first commits the
// records it has written, then follows WithFull: FullBlock (the default)
// waits for a drain to free enough space: it yields the processor a few
// times, watching the consumer position (a drain frees space record by
// record), then parks like an idle ring pump (no OS thread, no timer of its
// own), and bpf_user_ringbuf_drain wakes it
// after it drained records, and for drains made with BPF_RB_NO_WAKEUP,
// which wake no one, the process's periodic look checks the space every
// drain interval (WithDrainInterval; DefaultDrainInterval). Each wait is
// counted in Stats.FullRetries. FullDrop drops the value (Stats.Dropped),
// FullFail stops the pump with an error matching maps.ErrFull.
// FullOverwrite is refused: committed records belong to the kernel.
//
// Close commits every value whose send completed, waiting for room as
// long as it takes (cancel ctx to bound it); cancelling ctx stops at once,
// and what was received but not committed is counted in Stats.Dropped. A
// map has one writer in a process: a second UserRingBuf on it fails with
// ErrBusy until the first has stopped. Writers in other processes are not
// detected; two would overwrite each other's records. Peek returns an
// error matching errors.ErrUnsupported.
//
// Options: WithBuffer, WithFull, WithEncoder, WithDrainInterval.
func UserRingBuf[T any](ctx context.Context, m *ebpf.Map, opts ...Option) (*Sink[T], error) {
	const what = "user ring buffer writer"
	c, err := newConfig(what, userRingOpts, opts)
	if err != nil {
		return nil, err
	}
	if c.full == FullOverwrite {
		return nil, fmt.Errorf("%s: WithFull(%v): committed records belong to the kernel, none can be evicted: %w", what, c.full, ErrOption)
	}
	mi, err := claim(ctx, what, m, ebpf.UserRingbuf)
	if err != nil {
		return nil, err
	}
	s := &Sink[T]{}
	u, err := newUserRing(what, mi, c, &s.h.cnt)
	if err != nil {
		mi.m.Close()
		return nil, err
	}
	maxRec := u.w.MaxRecord()
	enc, err := encoderFor[T](c, mi.name, func(cd codec.Codec[T]) error {
		if cd.Size() > maxRec {
			return fmt.Errorf("record size: Go type %v is %d bytes, a record of at most %d fits the %d-byte ring: %w",
				reflect.TypeFor[T](), cd.Size(), maxRec, u.w.Size(), ErrSize)
		}
		return nil
	}, func(n int) error {
		if n > maxRec {
			return fmt.Errorf("encode value for %s: %d bytes, a record of at most %d fits: %w", mi.name, n, maxRec, ErrSize)
		}
		return nil
	})
	if err != nil {
		u.close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	s.peek = func() (v T, err error) {
		return v, fmt.Errorf("peek %s: records written into a user ring buffer cannot be read back: %w", mi.name, errors.ErrUnsupported)
	}
	s.c = make(chan T, c.buffer)
	w := &writer[T]{s: s, t: u, encode: enc, stop: newLatch()}
	s.h.start(ctx, w.interrupt, w.run, w.close)
	return s, nil
}

// userRing writes a sink's values into a user ring buffer's shared memory
// (internal/ringread) and waits for room through the process's one waiting
// goroutine (internal/netpoll).
type userRing struct {
	m       *ebpf.Map // the pump's clone
	name    string
	full    FullPolicy
	n       *counters
	w       *ringread.Writer
	reg     *netpoll.Reg
	release func() // gives up the map's writer registration

	written uint64 // values written since the last commit

	// need is the consumer position at which the record the pump waits to
	// write fits: the loop's periodic look wakes the pump once the kernel
	// has drained that far.
	need atomic.Uint64
}

// newUserRing registers mi's map as written by this pump, maps it and
// registers its descriptor for EPOLLOUT (a drain that freed space) with a
// look every drain interval.
func newUserRing(what string, mi mapInfo, c config, n *counters) (_ *userRing, err error) {
	u := &userRing{m: mi.m, name: mi.name, full: c.full, n: n}
	if u.release, err = claimReader(what, mi); err != nil {
		return nil, err
	}
	if u.w, err = ringread.OpenUser(mi.m); err != nil {
		u.release()
		return nil, fmt.Errorf("%s: open writer on %s: %w", what, mi.name, err)
	}
	u.reg, err = netpoll.Register(netpoll.Spec{
		FD:      mi.m.FD(),
		Events:  unix.EPOLLOUT,
		OneShot: true, // every drain signals room: only a waiting writer needs it
		Ready:   func() bool { return u.w.Reached(u.need.Load()) },
		Min:     c.drain,
		Max:     c.drain,
	})
	if err != nil {
		u.w.Close()
		u.release()
		return nil, fmt.Errorf("%s: wait for %s: %w", what, mi.name, err)
	}
	return u, nil
}

// put writes one record. When the ring has no room it commits what this
// run wrote (the BPF program can drain only committed records), then
// follows the full policy.
func (u *userRing) put(ctx context.Context, b []byte) error {
	n := &u.n.n
	for {
		ok, err := u.w.Write(b)
		if err != nil {
			n.Dropped++
			return fmt.Errorf("write to %s: %w", u.name, err)
		}
		if ok {
			u.written++
			return nil
		}
		if u.written > 0 {
			u.commit()
			continue
		}
		if settled, err := refuse(u.full, n, "write to", u.name); settled {
			return err
		}
		if err := u.waitRoom(ctx, len(b)); err != nil {
			n.Dropped++
			return err
		}
	}
}

// waitRoom parks until the ring has room for a record of size bytes, or
// ctx is done. Each park is counted in FullRetries.
func (u *userRing) waitRoom(ctx context.Context, size int) error {
	need := u.w.Need(size)
	// A drain frees space record by record, but wakes a parked writer
	// only when the whole drain call is over, by which time it has often
	// emptied the ring and has nothing left to do: linger a moment first.
	for range ringread.LingerYields {
		runtime.Gosched()
		if u.w.Reached(need) {
			return nil
		}
	}
	u.need.Store(need)
	// The kernel reports EPOLLOUT while any byte is free: keep the
	// descriptor armed for the whole wait, so that only a drain's wake-up
	// (not each re-arm) wakes the writer.
	u.reg.Hold()
	defer u.reg.Unhold()
	for {
		// Arm, then look: a drain between the look that found the ring
		// full and the arm woke nobody.
		u.reg.Arm(false)
		if u.w.Reached(u.need.Load()) {
			u.reg.Disarm()
			return nil
		}
		u.n.n.FullRetries++
		u.n.publish()
		if err := u.reg.Park(ctx, nil); err != nil {
			return err
		}
	}
}

// commit hands the records written to the kernel with one store of the
// producer position.
func (u *userRing) commit() {
	u.w.Commit()
	u.n.n.Delivered += u.written
	u.written = 0
}

// abort counts the records written and not committed as dropped; they are
// never committed (the next writer writes over them).
func (u *userRing) abort() {
	u.n.n.Dropped += u.written
	u.written = 0
}

// close unregisters the ring before it unmaps it (the waiting goroutine's
// look reads the consumer's page), then closes the clone.
func (u *userRing) close() error {
	defer u.release()
	return firstErr(u.reg.Close(), u.w.Close(), u.m.Close())
}
