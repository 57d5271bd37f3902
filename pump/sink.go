package pump

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/bpfcall"
	"github.com/bpfchan/bpfchan/internal/codec"
	"github.com/bpfchan/bpfchan/internal/netpoll"
	"github.com/bpfchan/bpfchan/internal/wake"
	"github.com/bpfchan/bpfchan/maps"
)

// Sink is a pump that pushes the values sent on C() into the kernel: a
// queue or stack map (QueueWriter, StackWriter) or a user ring buffer
// (UserRingBuf). It implements chans.Sender[T].
type Sink[T any] struct {
	h    handle
	c    chan T
	peek func() (T, error)

	life    sync.RWMutex // Peek against the release of the clone
	stopped bool         // the clone is closed
}

// C returns the channel to send values on. The caller closes it to say "no
// more"; the pump then pushes every value it received before Wait returns.
func (s *Sink[T]) C() chan<- T { return s.c }

// Wait blocks until the pump's goroutine has exited: after C() was closed
// and every value pushed (nil), after Close (nil), after ctx was cancelled
// (context.Cause(ctx)), or on the error that stopped it (with FullFail, one
// matching maps.ErrFull).
func (s *Sink[T]) Wait() error { return s.h.Wait() }

// Close stops the sink without closing C(): once the caller has stopped
// sending, every value whose send completed (including those still in C()'s
// buffer) is pushed, then the pump exits. A send after Close is misuse: the
// value may be lost (taken into C()'s buffer, never pushed nor counted) or
// the send may block forever.
func (s *Sink[T]) Close() error { return s.h.Close() }

// Done returns a channel that is closed when the pump has stopped. A caller
// that may outlive the pump (FullFail, a map closed under it) sends with
//
//	select {
//	case s.C() <- v:
//	case <-s.Done():
//		return s.Wait()
//	}
//
// since no one receives from C() after the pump stopped.
func (s *Sink[T]) Done() <-chan struct{} { return s.h.Done() }

// Stats returns the pump's counters (see Source.Stats).
func (s *Sink[T]) Stats() Stats { return s.h.Stats() }

// Peek returns the value at the front of the queue (the top of the stack)
// without removing it; maps.ErrEmpty when there is none. A user ring
// buffer's sink cannot peek: its error matches errors.ErrUnsupported.
func (s *Sink[T]) Peek() (T, error) { return s.peek() }

// QueueWriter starts a pump that pushes the values sent on C() into the
// queue map m, in order. When the map is full it follows WithFull (default
// FullBlock: retry with the WithPoll backoff until a consumer makes room;
// a pop by this package's pumps in this process retries at once). Each push
// wakes this package's pollers of the same map in this process.
//
// Options: WithBuffer, WithFull, WithEncoder, WithDecoder (for Peek),
// WithPoll.
func QueueWriter[T any](ctx context.Context, m *ebpf.Map, opts ...Option) (*Sink[T], error) {
	return newSink[T](ctx, "queue writer", m, ebpf.Queue, opts)
}

// StackWriter is QueueWriter for a stack map.
func StackWriter[T any](ctx context.Context, m *ebpf.Map, opts ...Option) (*Sink[T], error) {
	return newSink[T](ctx, "stack writer", m, ebpf.Stack, opts)
}

func newSink[T any](ctx context.Context, what string, m *ebpf.Map, typ ebpf.MapType, opts []Option) (*Sink[T], error) {
	c, err := newConfig(what, sinkOpts, opts)
	if err != nil {
		return nil, err
	}
	mi, err := claim(ctx, what, m, typ)
	if err != nil {
		return nil, err
	}
	s := &Sink[T]{}
	w, err := newWriter(what, mi, c, s)
	if err != nil {
		mi.m.Close()
		return nil, err
	}
	s.h.start(ctx, w.interrupt, w.run, w.close)
	return s, nil
}

// target is where a sink's values go. The one loop (writer.run) hands it
// the encoding of each value it receives (put), and once per run of values
// that were already waiting in C() it commits. A queue or stack map takes
// one push per value: put pushes, commit has nothing left to do. A user
// ring buffer takes records written into its shared memory: put writes,
// commit hands the run to the kernel with one store.
type target interface {
	// put takes one encoded value (the bytes are valid during the call
	// only) under the full policy, counting it delivered (or leaving it for
	// commit to count), dropped or retried. Its error stops the sink:
	// context.Cause(ctx) after a cancel (the value then counted dropped),
	// the full policy's, the kernel's.
	put(ctx context.Context, b []byte) error
	// commit makes what put wrote visible to the kernel, counted delivered.
	commit()
	// abort, after ctx was cancelled, counts what put wrote and commit did
	// not hand over as dropped.
	abort()
	// close releases the target's resources, the pump's clone included,
	// after the loop has exited.
	close() error
}

// maxRun bounds a run: how many values the loop takes from C() without
// blocking before it commits them, so that under a sender that never lets
// C() go empty the kernel still sees records and Stats move.
const maxRun = 256

// writer is a sink's loop: receive a run of values, encode and put each,
// commit.
type writer[T any] struct {
	s      *Sink[T]
	t      target
	encode func(v *T) ([]byte, error)
	v      T // the value in hand: a field, so that encoding it allocates nothing
	stop   *latch
}

// newWriter makes the loop that pushes into mi's queue or stack map (the
// pump's clone, which the writer closes when it stops).
func newWriter[T any](what string, mi mapInfo, c config, s *Sink[T]) (*writer[T], error) {
	m := mi.m
	size := int(m.ValueSize())
	q := &queueTarget{
		m:    m,
		name: mi.name,
		full: c.full,
		n:    &s.h.cnt,
	}
	enc, err := encoderFor[T](c, mi.name, func(cd codec.Codec[T]) error {
		return cd.Check("value", uint32(size))
	}, func(n int) error {
		if n != size {
			return fmt.Errorf("encode value for %s: %d bytes, map wants %d: %w", mi.name, n, size, ErrSize)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	dec, _, decErr := decoderFor[T](c, mi.name)
	s.peek = func() (v T, err error) {
		if decErr != nil {
			return v, fmt.Errorf("peek %s: %w", mi.name, decErr)
		}
		// The clone is closed when the sink stops: Peek then reports
		// ErrClosed, never touching a descriptor number the process may
		// have reused.
		s.life.RLock()
		defer s.life.RUnlock()
		if s.stopped {
			return v, fmt.Errorf("peek %s: %w", mi.name, errClosed)
		}
		b := make([]byte, max(size, 1))
		if err := m.Lookup(nil, unsafe.Pointer(&b[0])); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				return v, fmt.Errorf("peek %s: %w", mi.name, maps.ErrEmpty)
			}
			return v, fmt.Errorf("peek %s: %w", mi.name, closedErr(err))
		}
		err = dec(b[:size], &v)
		return v, err
	}
	q.spec = netpoll.Spec{FD: -1, Min: c.pollMin, Max: c.pollMax, Backoff: true}
	s.c = make(chan T, c.buffer)
	q.pushed = wake.Register(mi.id, wake.Pushed)
	q.popped = wake.Register(mi.id, wake.Popped)
	return &writer[T]{s: s, t: q, encode: enc, stop: newLatch()}, nil
}

// encoderFor returns how a sink turns a value into the bytes its target
// takes: the user's encoder (guarded against panics) or T's codec, which
// fits is given at construction to judge (a size that cannot be the
// map's). check judges the length of each encoding the codec cannot vouch
// for: a user encoder's, a []byte's, a BinaryMarshaler's. The bytes
// returned are valid until the next call; those of a fixed-size T without
// padding are T's own memory, not a copy.
func encoderFor[T any](c config, name string, fits func(codec.Codec[T]) error, check func(n int) error) (func(v *T) ([]byte, error), error) {
	if c.encoder != nil {
		f, ok := c.encoder.(func(T) ([]byte, error))
		if !ok {
			return nil, errWrongFunc[T](name, "WithEncoder", c.encoder)
		}
		return func(v *T) (b []byte, err error) {
			err = guard("encode value for "+name, func() (err error) {
				b, err = f(*v)
				return err
			})
			if err == nil {
				err = check(len(b))
			}
			return b, err
		}, nil
	}
	cd, err := codec.For[T]()
	if err == nil {
		err = fits(cd)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if cd.Direct() {
		return func(v *T) ([]byte, error) {
			b, _ := cd.Bytes(v)
			return b, nil
		}, nil
	}
	var buf []byte
	return func(v *T) (b []byte, err error) {
		if buf, err = cd.Encode(buf[:0], v); err == nil && cd.Size() < 0 {
			err = check(len(buf))
		}
		return buf, err
	}, nil
}

// run is the sink's goroutine: loop, then, when it stopped on an error or
// a cancel, the values whose send completed but that it never took from
// C()'s buffer are counted received and dropped, so that Stats account for
// every value (rule 4). A send that completes after that (into the
// buffer, before Done is closed) is not counted: a caller that may outlive
// the sink selects on Done, and stops sending once it is closed.
func (w *writer[T]) run(ctx context.Context) error {
	err := w.loop(ctx)
	if err != nil {
		// At most what C()'s buffer holds: a sender that keeps sending
		// until Done would otherwise keep this loop going.
		n := &w.s.h.cnt.n
		for range cap(w.s.c) {
			select {
			case _, ok := <-w.s.c:
				if ok {
					n.Received++
					n.Dropped++
					continue
				}
			default:
			}
			break
		}
	}
	return err
}

// loop receives until C() is closed, Close (then takes what completed its
// send), ctx, or a put fails. Each value received starts a run: the values
// already waiting in C() (up to maxRun) join it, then the target commits
// them together.
func (w *writer[T]) loop(ctx context.Context) error {
	stop := w.stop.c // nil once Close was seen: from then on receive without blocking
	for {
		var ok bool
		if stop == nil {
			select {
			case w.v, ok = <-w.s.c:
			default:
				return nil // everything whose send completed is pushed
			}
		} else {
			select {
			case w.v, ok = <-w.s.c:
			case <-stop:
				if ctx.Err() != nil {
					return context.Cause(ctx)
				}
				stop = nil
				continue
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		if !ok {
			return nil
		}
		closed, err := w.putRun(ctx)
		if err == nil && ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		if err != nil && ctx.Err() != nil {
			w.t.abort()
		} else {
			w.t.commit()
		}
		w.s.h.cnt.publish()
		if err != nil || closed {
			return err
		}
	}
}

// putRun puts the value in hand and those already waiting in C(), up to
// maxRun; closed reports that C() was found closed.
func (w *writer[T]) putRun(ctx context.Context) (closed bool, err error) {
	for k := 1; ; k++ {
		if err := w.put(ctx); err != nil {
			return false, err
		}
		if k == maxRun {
			return false, nil
		}
		if ctx.Err() != nil {
			return false, context.Cause(ctx) // take no more from C()
		}
		var ok bool
		select {
		case w.v, ok = <-w.s.c:
			if !ok {
				return true, nil
			}
		default:
			return false, nil
		}
	}
}

// put encodes the value in hand and hands it to the target.
func (w *writer[T]) put(ctx context.Context) error {
	n := &w.s.h.cnt.n
	n.Received++
	b, err := w.encode(&w.v)
	if err != nil {
		n.DecodeErrors++
		if errors.Is(err, ErrPanic) {
			return err
		}
		return nil
	}
	return w.t.put(ctx, b)
}

func (w *writer[T]) interrupt() { w.stop.set() }

// close releases the target, the pump's clone included, once Peek can no
// longer use it.
func (w *writer[T]) close() error {
	w.s.life.Lock()
	defer w.s.life.Unlock()
	w.s.stopped = true
	return w.t.close()
}

// queueTarget pushes into a queue or stack map, one syscall per value.
type queueTarget struct {
	m      *ebpf.Map // the pump's clone
	name   string
	full   FullPolicy
	n      *counters
	pushed *wake.Signal
	popped *wake.Signal
	// While the map is full the writer waits for the process's waiting
	// goroutine, whose looks come at a period that doubles from the
	// WithPoll minimum to its maximum: N blocked writers share its timer.
	// It registers the first time it finds the map full.
	spec netpoll.Spec
	reg  *netpoll.Reg
}

// put pushes one value under the full policy.
func (q *queueTarget) put(ctx context.Context, b []byte) error {
	n := &q.n.n
	var armed <-chan struct{} // set once the map was found full
	reset := true             // the first wait of this value starts the backoff at its minimum
	for {
		if ctx.Err() != nil {
			n.Dropped++
			return context.Cause(ctx)
		}
		n.Polls++
		// Our own bpf(2) call (internal/bpfcall): a full map's E2BIG costs
		// no error wrapping or allocation, which a blocked writer's retries
		// would pay at every look.
		e := bpfcall.Update(q.m.FD(), nil, b, unix.BPF_ANY)
		if e == 0 {
			n.Delivered++
			q.pushed.Notify()
			q.n.publish() // a consumer that popped it may look at Stats
			return nil
		}
		if e != unix.E2BIG {
			n.Dropped++
			return fmt.Errorf("push to %s: %w", q.name, closedErr(e))
		}
		if settled, err := refuse(q.full, n, "push to", q.name); settled {
			return err
		}
		if q.full == FullOverwrite {
			n.Polls++
			if e := bpfcall.Update(q.m.FD(), nil, b, unix.BPF_EXIST); e != 0 {
				n.Dropped++
				return fmt.Errorf("push to %s, overwriting: %w", q.name, closedErr(e))
			}
			n.Delivered++
			n.Overwritten++
			q.pushed.Notify()
			return nil
		}
		if armed == nil {
			// Full: arm the "popped" signal, then try once more, so a pop
			// between the failed push and the arm is not slept through.
			armed = q.popped.Armed()
			continue
		}
		n.FullRetries++
		q.n.publish()
		if q.reg == nil {
			reg, err := netpoll.Register(q.spec)
			if err != nil {
				n.Dropped++
				return fmt.Errorf("wait for room in %s: %w", q.name, err)
			}
			q.reg = reg
		}
		// A pop by a pump of this process closes armed; else the waiting
		// goroutine's next look wakes it (ctx is looked at above).
		_ = q.reg.Wait(ctx, armed, reset)
		armed, reset = nil, false
	}
}

// refuse settles a value that found the map full under FullDrop (nil) or
// FullFail (an error matching maps.ErrFull), counting it dropped; settled
// is false under the policies that go on trying.
func refuse(full FullPolicy, n *Stats, op, name string) (settled bool, err error) {
	switch full {
	case FullDrop:
		n.Dropped++
		return true, nil
	case FullFail:
		n.Dropped++
		return true, fmt.Errorf("%s %s: %w", op, name, maps.ErrFull)
	}
	return false, nil
}

// commit: every push is already in the map.
func (q *queueTarget) commit() {}

// abort: nothing is held between pushes.
func (q *queueTarget) abort() {}

// close releases the wake-up signals and the pump's clone.
func (q *queueTarget) close() error {
	q.pushed.Release()
	q.popped.Release()
	var err error
	if q.reg != nil {
		err = q.reg.Close()
	}
	return firstErr(err, q.m.Close())
}
