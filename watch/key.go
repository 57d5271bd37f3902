package watch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/codec"
	"github.com/bpfchan/bpfchan/internal/snapshot"
)

// Key waits until k exists in m and returns its value. It polls with one
// lookup per poll (none for an mmapable array: its memory is read directly),
// every DefaultKeyInterval unless WithInterval or WithAdaptive says otherwise.
//
// WithInitial and WithEqual do not apply to Key: giving them is an error.
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
	c, err := newConfig(DefaultKeyInterval, opts)
	if err == nil && (c.initial || c.equal != nil) {
		err = errors.New("WithInitial and WithEqual do not apply to Key")
	}
	if err != nil {
		return zero, fmt.Errorf("watch key: %w", err)
	}
	kp, cv, _, err := newKeyPoller[K, V](m, k, c)
	if err != nil {
		return zero, err
	}
	defer kp.Close()
	name := m.String()
	if errors.Is(ctx.Err(), context.Canceled) {
		return zero, fmt.Errorf("watch %s: wait for key: %w", name, context.Cause(ctx))
	}
	pauses := c.pauses()
	var timer *time.Timer
	for {
		if _, err := kp.Poll(nil); err != nil {
			return zero, fmt.Errorf("watch %s: wait for key: %w", name, closedErr(err))
		}
		if b, ok := kp.Present(); ok {
			var v V
			if err := cv.Decode(b, &v); err != nil {
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
// documentation); with WithInitial the baseline is reported first.
func Changes[K, V any](ctx context.Context, m *ebpf.Map, k K, opts ...Option) (*Watcher[Change[V]], error) {
	c, err := newConfig(DefaultKeyInterval, opts)
	if err != nil {
		return nil, fmt.Errorf("watch changes: %w", err)
	}
	kp, cv, eq, err := newKeyPoller[K, V](m, k, c)
	if err != nil {
		return nil, err
	}
	decode := func(p *pending) (Change[V], error) {
		ch := Change[V]{Present: p.kind != Deleted}
		return ch, decodeOldNew(cv, p, &ch.Old, &ch.New)
	}
	q := newQueue(eq)
	w := newWatcher(ctx, m.String(), kp, q, decode, c)
	absent := func(n int) {
		if !c.initial {
			return
		}
		if n == 0 { // report "absent" as the initial state
			w.inject(snapshot.Deleted, kp.Bytes())
		}
		q.keepInitial()
	}
	if err := w.start(c.initial, absent); err != nil {
		return nil, err
	}
	return w, nil
}

// newKeyPoller checks the types against m and returns the key's poller, the
// value codec and the raw equality (nil: compare bytes).
func newKeyPoller[K, V any](m *ebpf.Map, k K, c config) (*snapshot.Key, codec.Codec[V], func(a, b []byte) bool, error) {
	ck, cv, eq, err := setup[K, V](m, c)
	if err != nil {
		return nil, cv, nil, err
	}
	key, err := ck.EncodeSized(nil, &k, int(m.KeySize()))
	if err != nil {
		return nil, cv, nil, fmt.Errorf("watch %s: key: %w", m, err)
	}
	kp, err := snapshot.NewKey(m, key, snapshot.Options{Equal: eq})
	if err != nil {
		return nil, cv, nil, fmt.Errorf("watch: %w", err)
	}
	return kp, cv, eq, nil
}

// setup checks K and V against m's key and value sizes and builds the raw
// equality from WithEqual.
func setup[K, V any](m *ebpf.Map, c config) (codec.Codec[K], codec.Codec[V], func(a, b []byte) bool, error) {
	var (
		ck codec.Codec[K]
		cv codec.Codec[V]
	)
	if m == nil {
		return ck, cv, nil, errors.New("watch: nil map")
	}
	if err := snapshot.Watchable(m); err != nil {
		return ck, cv, nil, fmt.Errorf("watch %w", err)
	}
	ck, err := codec.For[K]()
	if err != nil {
		return ck, cv, nil, fmt.Errorf("watch %s: key: %w", m, err)
	}
	cv, err = codec.For[V]()
	if err != nil {
		return ck, cv, nil, fmt.Errorf("watch %s: value: %w", m, err)
	}
	if err := ck.Check("key", m.KeySize()); err != nil {
		return ck, cv, nil, fmt.Errorf("watch %s: %w", m, err)
	}
	if err := cv.Check("value", m.ValueSize()); err != nil {
		return ck, cv, nil, fmt.Errorf("watch %s: %w", m, err)
	}
	f, err := equalFunc[V](c)
	if err != nil {
		return ck, cv, nil, fmt.Errorf("watch %s: %w", m, err)
	}
	return ck, cv, rawEqual(cv, f), nil
}

// rawEqual lifts f to value bytes. Bytes that fail to decode are unequal.
func rawEqual[V any](cv codec.Codec[V], f func(a, b V) bool) func(a, b []byte) bool {
	if f == nil {
		return nil
	}
	var x, y V
	return func(a, b []byte) bool {
		if cv.Decode(a, &x) != nil || cv.Decode(b, &y) != nil {
			return false
		}
		return f(x, y)
	}
}

// decodeOldNew decodes the old and new values of p that it has.
func decodeOldNew[V any](cv codec.Codec[V], p *pending, old, new *V) error {
	if p.hasOld {
		if err := cv.Decode(p.old, old); err != nil {
			return err
		}
	}
	if p.hasNew {
		return cv.Decode(p.new, new)
	}
	return nil
}
