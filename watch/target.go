package watch

import (
	"fmt"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/codec"
	"github.com/bpfchan/bpfchan/internal/mapref"
	"github.com/bpfchan/bpfchan/internal/snapshot"
)

// target is what a watcher reads: its own clone of the caller's map, the
// map's name, the options and the codecs of K and V.
type target[K, V any] struct {
	m   *ebpf.Map // the clone; the poller made from it owns it
	ref mapref.Ref
	c   config
	ck  codec.Codec[K]
	cv  codec.Codec[V]
	eq  func(a, b []byte) bool // values' equality from WithEqual; nil: bytes
}

// open takes the watcher's clone of m and checks the options, K and V
// against it. A nil m is an error matching maps.ErrNilMap and ErrMapType,
// a closed one ErrClosed. On error it holds nothing, and the error names the map.
func open[K, V any](m *ebpf.Map, interval time.Duration, opts []Option) (*target[K, V], error) {
	own, ref, err := mapref.Clone(m)
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	tg := &target[K, V]{m: own, ref: ref}
	if err := tg.check(interval, opts); err != nil {
		return nil, tg.fail(err)
	}
	return tg, nil
}

func (tg *target[K, V]) check(interval time.Duration, opts []Option) (err error) {
	if tg.c, err = newConfig(interval, opts); err != nil {
		return err
	}
	if err := snapshot.Watchable(tg.m); err != nil {
		return err
	}
	if tg.ck, err = codec.For[K](); err != nil {
		return fmt.Errorf("key: %w", err)
	}
	if tg.cv, err = codec.For[V](); err != nil {
		return fmt.Errorf("value: %w", err)
	}
	if err := tg.ck.Check("key", tg.m.KeySize()); err != nil {
		return err
	}
	if err := tg.cv.Check("value", tg.m.ValueSize()); err != nil {
		return err
	}
	f, err := equalFunc[V](tg.c)
	tg.eq = rawEqual(tg.cv, f)
	return err
}

// fail releases the clone and returns err naming the map.
func (tg *target[K, V]) fail(err error) error {
	tg.m.Close()
	return fmt.Errorf("watch %s: %w", tg.ref, err)
}

// table returns the whole-map poller, which owns the clone from then on.
func (tg *target[K, V]) table() (*snapshot.Table, error) {
	t, err := snapshot.New(tg.m, snapshot.Options{Equal: tg.eq})
	if err != nil {
		return nil, tg.fail(err)
	}
	return t, nil
}

// key returns the poller of k, which owns the clone from then on.
func (tg *target[K, V]) key(k K) (*snapshot.Key, error) {
	b, err := tg.ck.EncodeSized(nil, &k, int(tg.m.KeySize()))
	if err != nil {
		return nil, tg.fail(fmt.Errorf("key: %w", err))
	}
	kp, err := snapshot.NewKey(tg.m, b, snapshot.Options{Equal: tg.eq})
	if err != nil {
		return nil, tg.fail(fmt.Errorf("key: %w", err))
	}
	return kp, nil
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
