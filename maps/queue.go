package maps

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/bpfchan/bpfchan/internal/codec"
	"github.com/cilium/ebpf"
)

// Polling bounds of PopWait: the first retry after an empty pop waits
// pollMin, each next one twice as long, up to pollMax.
const (
	pollMin = 20 * time.Microsecond
	pollMax = 10 * time.Millisecond
)

// Queue is a typed BPF queue map (FIFO). It owns its descriptor: Close it.
// It is safe for concurrent use, and Close may race with other calls: they
// complete or return ErrClosed. A popped zero value is a value: only ErrEmpty
// means empty.
type Queue[V any] struct {
	m    *ebpf.Map
	name string
	vc   codec.Codec[V]
	vs   int
	lf   life
}

// Stack is a typed BPF stack map (LIFO), with the methods of Queue.
type Stack[V any] Queue[V]

// NewQueue creates a queue of at most maxEntries values.
func NewQueue[V any](maxEntries uint32) (*Queue[V], error) {
	return newValues[V](ebpf.Queue, maxEntries)
}

// NewStack creates a stack of at most maxEntries values.
func NewStack[V any](maxEntries uint32) (*Stack[V], error) {
	q, err := newValues[V](ebpf.Stack, maxEntries)
	return (*Stack[V])(q), err
}

// OpenQueue wraps a clone of m, a queue map whose value size is V's.
func OpenQueue[V any](m *ebpf.Map) (*Queue[V], error) {
	return openValues[V](m, ebpf.Queue)
}

// OpenStack wraps a clone of m, a stack map whose value size is V's.
func OpenStack[V any](m *ebpf.Map) (*Stack[V], error) {
	q, err := openValues[V](m, ebpf.Stack)
	return (*Stack[V])(q), err
}

func newValues[V any](typ ebpf.MapType, maxEntries uint32) (*Queue[V], error) {
	spec := &ebpf.MapSpec{Type: typ, MaxEntries: maxEntries}
	vc, err := codec.For[V]()
	if err != nil {
		return nil, fmt.Errorf("create %s: value: %w", describeSpec(spec), err)
	}
	if vc.Size() < 0 {
		return nil, fmt.Errorf("create %s: value type %s has no fixed size: use ebpf.NewMap and OpenQueue/OpenStack", describeSpec(spec), vc)
	}
	spec.ValueSize = uint32(vc.Size())
	em, err := create(spec)
	if err != nil {
		return nil, err
	}
	return wrapValues(em, vc)
}

func openValues[V any](m *ebpf.Map, typ ebpf.MapType) (*Queue[V], error) {
	c, err := clone(m)
	if err != nil {
		return nil, err
	}
	vc, err := codec.For[V]()
	if err == nil && c.Type() != typ {
		err = fmt.Errorf("want a %s map: %w", typeName(typ), ErrMapType)
	}
	if err != nil {
		err = fmt.Errorf("open %s: %w", describe(c), err)
		c.Close()
		return nil, err
	}
	return wrapValues(c, vc)
}

func wrapValues[V any](em *ebpf.Map, vc codec.Codec[V]) (*Queue[V], error) {
	name := describe(em)
	if err := vc.Check("value", em.ValueSize()); err != nil {
		em.Close()
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	return &Queue[V]{m: em, name: name, vc: vc, vs: int(em.ValueSize())}, nil
}

// Push adds v; ErrFull when the queue is full.
func (q *Queue[V]) Push(v V) error { return q.push("push", v, ebpf.UpdateAny) }

// PushOverwrite adds v, evicting the oldest value when the queue is full
// (the kernel's BPF_EXIST flag).
func (q *Queue[V]) PushOverwrite(v V) error { return q.push("push", v, ebpf.UpdateExist) }

func (q *Queue[V]) push(op string, v V, flags ebpf.MapUpdateFlags) error {
	if !q.lf.acquire() {
		return opErr(op, q.name, ErrClosed)
	}
	defer q.lf.release()
	var vp unsafe.Pointer
	if q.vc.Direct() {
		vp = unsafe.Pointer(&v)
	} else {
		b, err := q.vc.EncodeSized(nil, &v, q.vs)
		if err != nil {
			return opErr(op, q.name, err)
		}
		vp = ptr(b)
	}
	if err := q.m.Update(nil, vp, flags); err != nil {
		return opErr(op, q.name, kernelErr(q.m.Type(), err))
	}
	return nil
}

// Pop removes and returns the oldest value; ErrEmpty when there is none.
func (q *Queue[V]) Pop() (V, error) { return q.get("pop", true) }

// Peek returns the oldest value without removing it; ErrEmpty when there is
// none.
func (q *Queue[V]) Peek() (V, error) { return q.get("peek", false) }

func (q *Queue[V]) get(op string, del bool) (V, error) {
	var v V
	if !q.lf.acquire() {
		return v, opErr(op, q.name, ErrClosed)
	}
	defer q.lf.release()
	var buf []byte
	vp := unsafe.Pointer(&v)
	if !q.vc.Direct() {
		buf = make([]byte, q.vs)
		vp = ptr(buf)
	}
	var err error
	if del {
		err = q.m.LookupAndDelete(nil, vp)
	} else {
		err = q.m.Lookup(nil, vp)
	}
	switch {
	case errors.Is(err, ErrKeyNotExist):
		return v, opErr(op, q.name, ErrEmpty)
	case err != nil:
		return v, opErr(op, q.name, kernelErr(q.m.Type(), err))
	}
	if buf != nil {
		if err := q.vc.Decode(buf, &v); err != nil {
			return v, opErr(op, q.name, err)
		}
	}
	return v, nil
}

// PopWait pops the oldest value, waiting for one while the queue is empty:
// it polls, backing off from 20µs to 10ms between tries (the kernel has no
// readiness notification for queues). It returns context.Cause(ctx) once
// ctx is done, without popping; any other error ends the wait too.
func (q *Queue[V]) PopWait(ctx context.Context) (V, error) { return q.wait(ctx, "pop") }

func (q *Queue[V]) wait(ctx context.Context, op string) (V, error) {
	var zero V
	delay := pollMin
	var timer *time.Timer
	for {
		if ctx.Err() != nil {
			return zero, context.Cause(ctx)
		}
		v, err := q.get(op, true)
		if !errors.Is(err, ErrEmpty) {
			return v, err
		}
		if timer == nil {
			timer = time.NewTimer(delay)
			defer timer.Stop()
		} else {
			timer.Reset(delay)
		}
		select {
		case <-ctx.Done():
			return zero, context.Cause(ctx)
		case <-timer.C:
		}
		delay = min(2*delay, pollMax)
	}
}

// Map returns the underlying map, owned by q: do not close it, and do not
// use it after q.Close.
func (q *Queue[V]) Map() *ebpf.Map { return q.m }

// Close closes the map; later calls on q return ErrClosed.
func (q *Queue[V]) Close() error {
	if q == nil {
		return nil
	}
	_, err := q.lf.shut(q.m)
	return err
}

// Push adds v on top; ErrFull when the stack is full.
func (s *Stack[V]) Push(v V) error { return (*Queue[V])(s).Push(v) }

// PushOverwrite adds v on top, evicting the bottom (oldest) value when the
// stack is full.
func (s *Stack[V]) PushOverwrite(v V) error { return (*Queue[V])(s).PushOverwrite(v) }

// Pop removes and returns the newest value; ErrEmpty when there is none.
func (s *Stack[V]) Pop() (V, error) { return (*Queue[V])(s).Pop() }

// Peek returns the newest value without removing it; ErrEmpty when there
// is none.
func (s *Stack[V]) Peek() (V, error) { return (*Queue[V])(s).Peek() }

// PopWait pops the newest value, waiting as Queue.PopWait does.
func (s *Stack[V]) PopWait(ctx context.Context) (V, error) { return (*Queue[V])(s).PopWait(ctx) }

// Map returns the underlying map, owned by s.
func (s *Stack[V]) Map() *ebpf.Map { return s.m }

// Close closes the map; later calls on s return ErrClosed.
func (s *Stack[V]) Close() error { return (*Queue[V])(s).Close() }
