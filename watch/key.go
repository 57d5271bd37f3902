package watch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/snapshot"
)

// Key waits until k exists in m and returns its value. It polls with one
// lookup per poll (none for an mmapable array: its memory is read directly),
// every DefaultKeyInterval unless WithInterval or WithAdaptive says otherwise.
//
// Every index of an array map exists, so on an array Key returns the
// entry's current value at once (the zero value if nothing wrote it):
// to wait until an array entry changes, use Changes.
//
// WithInitial and WithEqual do not apply to Key: giving them is an error.
// Key reads through its own clone of m, released before it returns; a nil
// m is an error matching maps.ErrNilMap and ErrMapType, a closed one
// ErrClosed.
//
// A context that is already cancelled returns at once with an error wrapping
// context.Cause(ctx); one whose deadline has already passed gets exactly one
// look. When ctx ends before the key appears, the error wraps both
// ErrKeyNotExist and context.Cause(ctx).
func Key[K, V any](ctx context.Context, m *ebpf.Map, k K, opts ...Option) (V, error) {
	return waitKey[K, V](ctx, m, k, nil, opts...)
}

// waitKey is Key with a hook called after every look that missed (tests use
// it to change the map once the wait is known to have started).
func waitKey[K, V any](ctx context.Context, m *ebpf.Map, k K, missed func(), opts ...Option) (V, error) {
	var zero V
	tg, err := open[K, V](m, DefaultKeyInterval, opts)
	if err != nil {
		return zero, err
	}
	if tg.c.initial || tg.c.equal != nil {
		return zero, tg.fail(fmt.Errorf("WithInitial and WithEqual do not apply to Key: %w", ErrOption))
	}
	kp, err := tg.key(k)
	if err != nil {
		return zero, err
	}
	defer kp.Close()
	name := tg.ref.String()
	if errors.Is(ctx.Err(), context.Canceled) {
		return zero, fmt.Errorf("watch %s: wait for key: %w", name, context.Cause(ctx))
	}
	pauses := tg.c.pauses()
	var timer *time.Timer
	for {
		if _, err := kp.Poll(nil); err != nil {
			return zero, fmt.Errorf("watch %s: wait for key: %w", name, err)
		}
		if b, ok := kp.Present(); ok {
			var v V
			if err := tg.cv.Decode(b, &v); err != nil {
				return zero, fmt.Errorf("watch %s: decode value: %w", name, err)
			}
			return v, nil
		}
		if missed != nil {
			missed()
		}
		if ctx.Err() != nil {
			return zero, fmt.Errorf("watch %s: wait for key: %w: %w", name, ErrKeyNotExist, context.Cause(ctx))
		}
		d := pauses.Next() // a miss is a quiet poll: WithAdaptive backs off from min
		if timer == nil {
			timer = time.NewTimer(d)
			defer timer.Stop()
		} else {
			timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			return zero, fmt.Errorf("watch %s: wait for key: %w: %w", name, ErrKeyNotExist, context.Cause(ctx))
		case <-timer.C:
		}
	}
}

// Changes watches one key of m and delivers each change it observes: a new
// value, the key's deletion (Present: false) and its re-creation (Present:
// true, Old the zero value). A rewrite with an equal value is no change. The
// baseline is read before Changes returns, so any change made after it
// returns is reported (subject to the level-triggered rules in the package
// documentation); with WithInitial the baseline is reported first. An array
// entry always exists: it only ever changes value.
func Changes[K, V any](ctx context.Context, m *ebpf.Map, k K, opts ...Option) (*Watcher[Change[V]], error) {
	tg, err := open[K, V](m, DefaultKeyInterval, opts)
	if err != nil {
		return nil, err
	}
	kp, err := tg.key(k)
	if err != nil {
		return nil, err
	}
	decode := func(p *pending) (Change[V], error) {
		ch := Change[V]{Present: p.kind != Deleted}
		return ch, decodeOldNew(tg.cv, p, &ch.Old, &ch.New)
	}
	q := newQueue(tg.eq)
	w := newWatcher(ctx, tg.ref.String(), kp, q, decode, tg.c)
	absent := func(n int) {
		if !tg.c.initial {
			return
		}
		if n == 0 { // report "absent" as the initial state
			w.inject(snapshot.Deleted, kp.Bytes())
		}
		q.keepInitial()
	}
	if err := w.start(tg.c.initial, absent); err != nil {
		return nil, err
	}
	return w, nil
}
