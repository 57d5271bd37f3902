package pump

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/backoff"
	"github.com/bpfchan/bpfchan/internal/codec"
	"github.com/bpfchan/bpfchan/internal/wake"
	"github.com/bpfchan/bpfchan/maps"
)

// Sink is a pump that pushes the values sent on C() into a queue or stack
// map. It implements chans.Sender[T].
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
// without removing it; maps.ErrEmpty when there is none.
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

// writer is a sink's loop: receive, encode, push.
type writer[T any] struct {
	s      *Sink[T]
	m      *ebpf.Map
	name   string
	full   FullPolicy
	encode func(dst []byte, v *T) ([]byte, error)
	buf    []byte
	pushed *wake.Signal
	popped *wake.Signal
	sleep  backoff.Sleeper
	stop   *latch
}

// newWriter makes the loop that pushes into mi's map (the pump's clone,
// which the writer closes when it stops).
func newWriter[T any](what string, mi mapInfo, c config, s *Sink[T]) (*writer[T], error) {
	m := mi.m
	size := int(m.ValueSize())
	w := &writer[T]{
		s:     s,
		m:     m,
		name:  mi.name,
		full:  c.full,
		buf:   make([]byte, 0, max(size, 1)),
		sleep: backoff.Sleeper{Backoff: backoff.Backoff{Min: c.pollMin, Max: c.pollMax}},
		stop:  newLatch(),
	}
	if c.encoder != nil {
		f, ok := c.encoder.(func(T) ([]byte, error))
		if !ok {
			return nil, fmt.Errorf("%s: %w", what, errWrongFunc[T](mi.name, "WithEncoder", c.encoder))
		}
		w.encode = func(dst []byte, v *T) ([]byte, error) {
			var b []byte
			err := guard("encode value for "+mi.name, func() (err error) {
				b, err = f(*v)
				return err
			})
			if err == nil && len(b) != size {
				err = fmt.Errorf("encode value for %s: %d bytes, map wants %d: %w", mi.name, len(b), size, ErrSize)
			}
			return append(dst, b...), err
		}
	} else {
		cd, err := codec.For[T]()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", what, mi.name, err)
		}
		if err := cd.Check("value", uint32(size)); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", what, mi.name, err)
		}
		w.encode = func(dst []byte, v *T) ([]byte, error) { return cd.EncodeSized(dst, v, size) }
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
	s.c = make(chan T, c.buffer)
	w.pushed = wake.Register(mi.id, wake.Pushed)
	w.popped = wake.Register(mi.id, wake.Popped)
	return w, nil
}

// run receives until C() is closed, Close (then drains what completed its
// send), ctx, or a push fails.
func (w *writer[T]) run(ctx context.Context) error {
	stop := w.stop.c // nil once Close was seen: from then on receive without blocking
	for {
		var (
			v  T
			ok bool
		)
		if stop == nil {
			select {
			case v, ok = <-w.s.c:
			default:
				return nil // everything whose send completed is pushed
			}
		} else {
			select {
			case v, ok = <-w.s.c:
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
		if err := w.push(ctx, v); err != nil {
			return err
		}
		w.s.h.cnt.publish()
	}
}

// push puts one value into the map under the full policy.
func (w *writer[T]) push(ctx context.Context, v T) (err error) {
	n := &w.s.h.cnt.n
	n.Received++
	if w.buf, err = w.encode(w.buf[:0], &v); err != nil {
		n.DecodeErrors++
		if errors.Is(err, ErrPanic) {
			return err
		}
		return nil
	}
	ptr := unsafe.Pointer(&w.buf[0])
	w.sleep.Reset()
	var armed <-chan struct{} // set once the map was found full
	for {
		if ctx.Err() != nil {
			n.Dropped++
			return context.Cause(ctx)
		}
		n.Polls++
		err := w.m.Update(nil, ptr, ebpf.UpdateAny)
		if err == nil {
			n.Delivered++
			w.pushed.Notify()
			return nil
		}
		if !errors.Is(err, syscall.E2BIG) {
			n.Dropped++
			return fmt.Errorf("push to %s: %w", w.name, closedErr(err))
		}
		switch w.full {
		case FullDrop:
			n.Dropped++
			return nil
		case FullFail:
			n.Dropped++
			return fmt.Errorf("push to %s: %w", w.name, maps.ErrFull)
		case FullOverwrite:
			n.Polls++
			if err := w.m.Update(nil, ptr, ebpf.UpdateExist); err != nil {
				n.Dropped++
				return fmt.Errorf("push to %s, overwriting: %w", w.name, closedErr(err))
			}
			n.Delivered++
			n.Overwritten++
			w.pushed.Notify()
			return nil
		}
		if armed == nil {
			// Full: arm the "popped" signal, then try once more, so a pop
			// between the failed push and the arm is not slept through.
			armed = w.popped.Armed()
			continue
		}
		n.FullRetries++
		w.s.h.cnt.publish()
		w.sleep.Sleep(ctx, armed, nil) // ctx is looked at above
		armed = nil
	}
}

func (w *writer[T]) interrupt() { w.stop.set() }

// close releases the wake-up signals and the pump's clone (after Peek can
// no longer use it).
func (w *writer[T]) close() error {
	w.pushed.Release()
	w.popped.Release()
	w.s.life.Lock()
	defer w.s.life.Unlock()
	w.s.stopped = true
	return w.m.Close()
}
