package maps

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/bpfchan/bpfchan/internal/backoff"
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
	handle
	vc codec.Codec[V]
	vs int
}

// Stack is a typed BPF stack map (LIFO), with the methods of Queue.
type Stack[V any] Queue[V]

// NewQueue creates a queue of at most maxEntries values.
func NewQueue[V any](maxEntries uint32, opts ...MapOption) (*Queue[V], error) {
	em, err := createValues[V](specOf(ebpf.Queue, maxEntries, opts))
	if err != nil {
		return nil, err
	}
	return adoptQueue[V](em)
}

// NewStack creates a stack of at most maxEntries values.
func NewStack[V any](maxEntries uint32, opts ...MapOption) (*Stack[V], error) {
	em, err := createValues[V](specOf(ebpf.Stack, maxEntries, opts))
	if err != nil {
		return nil, err
	}
	return adoptStack[V](em)
}

// OpenQueue wraps a clone of m, a queue map whose value size is V's.
func OpenQueue[V any](m *ebpf.Map) (*Queue[V], error) {
	return openClone(m, adoptQueue[V])
}

// OpenStack wraps a clone of m, a stack map whose value size is V's.
func OpenStack[V any](m *ebpf.Map) (*Stack[V], error) {
	return openClone(m, adoptStack[V])
}

// createValues creates the queue or stack of spec, of values V.
func createValues[V any](spec *ebpf.MapSpec) (*ebpf.Map, error) {
	return createFixed[V](spec, &spec.ValueSize, "value", "OpenQueue/OpenStack")
}

func adoptQueue[V any](em *ebpf.Map) (*Queue[V], error) { return adoptValues[V](em, ebpf.Queue) }

func adoptStack[V any](em *ebpf.Map) (*Stack[V], error) {
	q, err := adoptValues[V](em, ebpf.Stack)
	return (*Stack[V])(q), err
}

// adoptValues wraps em, a queue or stack (typ) that the new wrapper owns: em
// is closed on error.
func adoptValues[V any](em *ebpf.Map, typ ebpf.MapType) (*Queue[V], error) {
	vc, err := codec.For[V]()
	if err != nil {
		err = fmt.Errorf("value: %w", err)
	}
	q := &Queue[V]{vc: vc}
	if err := q.own(em, err, wantType(em.Type(), typ), vc.Check("value", em.ValueSize())); err != nil {
		return nil, err
	}
	q.vs = int(em.ValueSize())
	return q, nil
}

// Push adds v; ErrFull when the queue is full.
func (q *Queue[V]) Push(v V) error { return q.push("push", v, ebpf.UpdateAny) }

// PushOverwrite adds v, evicting the oldest value when the queue is full
// (the kernel's BPF_EXIST flag).
func (q *Queue[V]) PushOverwrite(v V) error { return q.push("push", v, ebpf.UpdateExist) }

func (q *Queue[V]) push(op string, v V, flags ebpf.MapUpdateFlags) error {
	vp, err := encodePtr(q.vc, &v, q.vs)
	if err != nil {
		return opErr(op, q.name, err)
	}
	return q.do(op, func() error { return q.m.Update(nil, vp, flags) })
}

// Pop removes and returns the oldest value; ErrEmpty when there is none.
func (q *Queue[V]) Pop() (V, error) { return q.get("pop", true) }

// Peek returns the oldest value without removing it; ErrEmpty when there is
// none.
func (q *Queue[V]) Peek() (V, error) { return q.get("peek", false) }

func (q *Queue[V]) get(op string, del bool) (V, error) {
	var v V
	var buf []byte
	vp := unsafe.Pointer(&v)
	if !q.vc.Direct() {
		buf = make([]byte, q.vs)
		vp = ptr(buf)
	}
	err := q.do(op, func() error {
		var err error
		if del {
			err = q.m.LookupAndDelete(nil, vp)
		} else {
			err = q.m.Lookup(nil, vp)
		}
		if errors.Is(err, ErrKeyNotExist) {
			return ErrEmpty
		}
		return err
	})
	if err != nil {
		return v, err
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
	bo := backoff.Backoff{Min: pollMin, Max: pollMax}
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
			timer = time.NewTimer(bo.Next())
			defer timer.Stop()
		} else {
			timer.Reset(bo.Next())
		}
		select {
		case <-ctx.Done():
			return zero, context.Cause(ctx)
		case <-timer.C:
		}
	}
}

// Close closes the map; later calls on q return ErrClosed.
func (q *Queue[V]) Close() error {
	if q == nil {
		return nil
	}
	_, err := q.close()
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

// Close closes the map; later calls on s return ErrClosed.
func (s *Stack[V]) Close() error { return (*Queue[V])(s).Close() }
