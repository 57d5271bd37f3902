package watch

import (
	"context"

	"github.com/cilium/ebpf"
)

// Map watches every entry of m and delivers an Event for each key that was
// added, updated or deleted between two polls, with the old and the new
// value. Each poll reads the whole map with batch lookups and a cursor (never
// one syscall per key; only a kernel that refuses batch lookups is walked key
// by key) and compares that with the previous poll, or, for a
// BPF_F_MMAPABLE array, compares its shared memory in place with the previous
// poll, with no syscall and no copy. Keys and values are decoded only for
// the entries that changed. Polls run every DefaultMapInterval unless
// WithInterval or WithAdaptive says otherwise.
//
// The baseline is read before Map returns, so any change made after it
// returns is reported (subject to the level-triggered rules in the package
// documentation); with WithInitial every entry present at the start is
// reported as Added first. An array's entries always exist: they are only
// ever Updated.
func Map[K, V any](ctx context.Context, m *ebpf.Map, opts ...Option) (*Watcher[Event[K, V]], error) {
	w, initial, err := newMap[K, V](ctx, m, opts)
	if err != nil {
		return nil, err
	}
	if err := w.start(initial, nil); err != nil {
		return nil, err
	}
	return w, nil
}

// newMap builds a whole-map watcher without reading the baseline or starting
// its goroutine, and says whether WithInitial was given.
func newMap[K, V any](ctx context.Context, m *ebpf.Map, opts []Option) (*Watcher[Event[K, V]], bool, error) {
	tg, err := open[K, V](m, DefaultMapInterval, opts)
	if err != nil {
		return nil, false, err
	}
	t, err := tg.table()
	if err != nil {
		return nil, false, err
	}
	decode := func(p *pending) (Event[K, V], error) {
		e := Event[K, V]{Kind: p.kind}
		if err := tg.ck.Decode(p.key, &e.Key); err != nil {
			return e, err
		}
		return e, decodeOldNew(tg.cv, p, &e.Old, &e.New)
	}
	return newWatcher(ctx, tg.ref.String(), t, newQueue(tg.eq), decode, tg.c), tg.c.initial, nil
}
