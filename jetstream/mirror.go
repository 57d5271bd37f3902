package jetstream

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	js "github.com/nats-io/nats.go/jetstream"

	"github.com/bpfchan/bpfchan/maps"
)

// Mirror keeps a BPF hash map equal to a JetStream KV bucket.
type Mirror[K, V any] struct {
	h      handle
	synced chan struct{}

	mu      sync.Mutex
	applied uint64        // the revision of the last bucket entry applied
	moved   chan struct{} // made by a waiter, closed when applied moves
}

// NewMirror starts a Mirror of the bucket kv into the hash map m: the
// bucket's snapshot first (every key of the bucket put, every entry of the
// map whose key is not in it deleted; then Synced() is closed), then every
// put and delete as it happens. When the watch breaks (the server
// restarted, the connection came back), the Mirror watches again from the
// revision after the last one it applied, so no change is missed.
//
// Keys travel as base64url without padding of K's binary encoding (KV keys
// are restricted to [-/_=.a-zA-Z0-9]) and values as V's binary encoding;
// WithKeyDecoder and WithValueDecoder read buckets written by other tools.
// A key or value that does not decode (a panic of the decoding included)
// is counted in Stats.DecodeErrors; the key of such a value is treated as
// absent (deleted from the map if there), so the map never holds a value
// the bucket no longer has. A put the full map cannot hold is counted in
// Stats.Dropped and the Mirror goes on (the key stays absent until a later
// put of it finds room); during the snapshot such a put is tried again
// once the entries the bucket lacks are deleted, and counted only if it
// still does not fit.
//
// The Mirror works on its own clone of m: the caller keeps and closes m.
// m must be a hash map (else an error matching ErrMapType) whose key and
// value sizes are those of K and V (else an error naming both sizes,
// matching ErrSize); a bucket that no longer exists is an error matching
// jetstream.ErrBucketNotFound. Close leaves the map as it is.
//
// Options: WithKeyDecoder, WithValueDecoder.
func NewMirror[K, V any](ctx context.Context, kv js.KeyValue, m *ebpf.Map, opts ...Option) (*Mirror[K, V], error) {
	const what = "new mirror"
	c, err := newConfig(what, []string{"WithKeyDecoder", "WithValueDecoder"}, opts)
	if err != nil {
		return nil, err
	}
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	if kv == nil {
		return nil, fmt.Errorf("%s: nil KeyValue: %w", what, ErrOption)
	}
	bucket := kv.Bucket()
	if m == nil {
		return nil, fmt.Errorf("%s of bucket %q: %w", what, bucket, ErrNilMap)
	}
	if m.FD() >= 0 && m.Type() != ebpf.Hash {
		return nil, fmt.Errorf("%s of bucket %q into %s: a hash map is needed: %w", what, bucket, mapName(m), ErrMapType)
	}
	l := &mirrorLoop[K, V]{kv: kv, bucket: bucket}
	if l.key, err = keyDecoder[K](what, c); err != nil {
		return nil, err
	}
	if l.value, err = valueDecoder[V](what, c); err != nil {
		return nil, err
	}
	if l.keyCodec, err = codecFor[K](); err != nil {
		return nil, fmt.Errorf("%s of bucket %q: key: %w", what, bucket, err)
	}
	mm, err := maps.Open[K, V](m)
	if err != nil {
		return nil, fmt.Errorf("%s of bucket %q: %w", what, bucket, err)
	}
	l.m, l.name = mm, mapName(mm.Map())
	if _, err := kv.Status(ctx); err != nil {
		mm.Close()
		if errors.Is(err, js.ErrStreamNotFound) || errors.Is(err, js.ErrBucketNotFound) {
			err = js.ErrBucketNotFound
		}
		return nil, fmt.Errorf("%s of bucket %q into %s: %w", what, bucket, l.name, err)
	}
	if l.w, err = kv.WatchAll(ctx); err != nil {
		mm.Close()
		return nil, fmt.Errorf("%s of bucket %q into %s: watch: %w", what, bucket, l.name, err)
	}
	mi := &Mirror[K, V]{synced: make(chan struct{})}
	l.mi = mi
	mi.h.start(ctx, l.run)
	return mi, nil
}

// keyDecoder returns how a bucket key becomes a K: WithKeyDecoder's
// function, or base64url (no padding) of K's binary encoding.
func keyDecoder[K any](what string, c config) (func(string) (K, error), error) {
	if c.keyDec != nil {
		f, err := userFunc[func(string) (K, error)](what, "WithKeyDecoder", c.keyDec)
		if err != nil {
			return nil, err
		}
		return func(s string) (k K, err error) {
			err = guard("decode key", func() (err error) {
				k, err = f(s)
				return err
			})
			return k, err
		}, nil
	}
	cd, err := codecFor[K]()
	if err != nil {
		return nil, fmt.Errorf("%s: key: %w", what, err)
	}
	return func(s string) (k K, err error) {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			return k, fmt.Errorf("decode key %q: %w", s, err)
		}
		err = cd.decode(b, &k)
		return k, err
	}, nil
}

// valueDecoder returns how a bucket value becomes a V: WithValueDecoder's
// function, or V's binary encoding.
func valueDecoder[V any](what string, c config) (func([]byte) (V, error), error) {
	if c.valueDec != nil {
		f, err := userFunc[func([]byte) (V, error)](what, "WithValueDecoder", c.valueDec)
		if err != nil {
			return nil, err
		}
		return func(b []byte) (v V, err error) {
			err = guard("decode value", func() (err error) {
				v, err = f(b)
				return err
			})
			return v, err
		}, nil
	}
	cd, err := codecFor[V]()
	if err != nil {
		return nil, fmt.Errorf("%s: value: %w", what, err)
	}
	return func(b []byte) (v V, err error) {
		err = cd.decode(b, &v)
		return v, err
	}, nil
}

// Synced returns a channel closed once the bucket's snapshot is in the
// map. It is never closed if the Mirror stops first: select on Done too.
func (mi *Mirror[K, V]) Synced() <-chan struct{} { return mi.synced }

// Revision returns the revision of the last bucket entry the Mirror
// applied to the map (0 before the first): compared with the bucket's
// latest revision, it says how far the map lags.
func (mi *Mirror[K, V]) Revision() uint64 {
	mi.mu.Lock()
	defer mi.mu.Unlock()
	return mi.applied
}

// WaitRevision returns once the Mirror has applied the bucket's entry of
// revision rev or a later one (the revision a Put or Delete on the bucket
// returned, say), so the map reflects that change. It returns an error
// when ctx is done first (its cause) or the Mirror stopped first.
func (mi *Mirror[K, V]) WaitRevision(ctx context.Context, rev uint64) error {
	for {
		mi.mu.Lock()
		if mi.applied >= rev {
			mi.mu.Unlock()
			return nil
		}
		if mi.moved == nil {
			mi.moved = make(chan struct{})
		}
		moved := mi.moved
		mi.mu.Unlock()
		select {
		case <-moved:
		case <-mi.h.Done():
			r := mi.Revision()
			if r >= rev {
				return nil
			}
			if err := mi.h.Wait(); err != nil {
				return fmt.Errorf("wait for revision %d: the mirror stopped at revision %d: %w", rev, r, err)
			}
			return fmt.Errorf("wait for revision %d: the mirror was closed at revision %d", rev, r)
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// advance records that the entry of revision rev was applied and wakes
// WaitRevision.
func (mi *Mirror[K, V]) advance(rev uint64) {
	mi.mu.Lock()
	defer mi.mu.Unlock()
	mi.applied = rev
	if mi.moved != nil {
		close(mi.moved)
		mi.moved = nil
	}
}

// Wait blocks until the Mirror's goroutine has exited. It returns nil after
// Close, context.Cause(ctx) after ctx was cancelled, and otherwise the error
// that stopped it, naming the bucket and the map (the connection closed for
// good, the map's descriptor failing). A key or value whose decoding
// panics does not stop it: it is counted as a decode error.
func (mi *Mirror[K, V]) Wait() error { return mi.h.Wait() }

// Close stops the Mirror, leaving the map as it is, and returns Wait's
// result.
func (mi *Mirror[K, V]) Close() error { return mi.h.Close() }

// Done returns a channel closed when the Mirror has stopped.
func (mi *Mirror[K, V]) Done() <-chan struct{} { return mi.h.Done() }

// Stats returns the counters, in bucket entries. Once the Mirror has
// stopped, Received == Delivered + Dropped + DecodeErrors.
func (mi *Mirror[K, V]) Stats() Stats { return mi.h.Stats() }

// MetricKind and MetricCounters make a Mirror a metrics.Handle: its Stats
// are exported as bpfchan_jetstream_mirror_<counter>_total.
func (mi *Mirror[K, V]) MetricKind() string { return kindMirror }

// MetricCounters emits the Stats counters under snake_case names.
func (mi *Mirror[K, V]) MetricCounters(emit func(name string, value uint64)) {
	mi.Stats().emit(kindMirror, emit)
}

// mirrorLoop is a Mirror's goroutine and what it owns: the map's clone and
// the watch.
type mirrorLoop[K, V any] struct {
	mi       *Mirror[K, V]
	kv       js.KeyValue
	bucket   string
	m        *maps.Map[K, V]
	name     string
	w        js.KeyWatcher
	key      func(string) (K, error)
	value    func([]byte) (V, error)
	keyCodec codec[K]
	seen     map[string]struct{} // the snapshot's keys (K's encoding), until synced
	full     map[string]kv[K, V] // the snapshot's puts the full map refused, until synced
	last     uint64              // the revision of the last entry applied
}

// Pauses between attempts to watch again after the watch broke.
const (
	rewatchMin = 50 * time.Millisecond
	rewatchMax = 2 * time.Second
)

func (l *mirrorLoop[K, V]) run(ctx context.Context) (err error) {
	defer func() {
		l.stopWatch()
		l.m.Close()
		// Stopped during the snapshot: its puts waiting for room never
		// reached the map.
		l.mi.h.cnt.dropped.Add(uint64(len(l.full)))
		if err != nil && ctx.Err() == nil {
			err = fmt.Errorf("mirror bucket %q into %s: %w", l.bucket, l.name, err)
		}
	}()
	l.seen = make(map[string]struct{})
	l.full = make(map[string]kv[K, V])
	retry := backoff{min: rewatchMin, max: rewatchMax}
	for {
		select {
		case e, ok := <-l.w.Updates():
			if !ok {
				// The watch ended under us: watch again from the next
				// revision (the whole snapshot if none was applied yet).
				if err := l.rewatch(ctx, &retry); err != nil {
					if err == errStopping {
						return nil
					}
					return err
				}
				continue
			}
			if e == nil {
				if err := l.synced(); err != nil {
					return err
				}
				continue
			}
			retry.reset()
			if err := l.apply(e); err != nil {
				return err
			}
		case <-l.mi.h.closing:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// apply makes the map follow one bucket entry.
func (l *mirrorLoop[K, V]) apply(e js.KeyValueEntry) error {
	cnt := &l.mi.h.cnt
	cnt.received.Add(1)
	l.last = e.Revision()
	defer l.mi.advance(l.last)
	k, err := l.key(e.Key())
	if err != nil {
		// A panic of the key's decoding included: one entry of a bucket
		// that every node of a fleet mirrors must not stop them all.
		cnt.decodeErrors.Add(1)
		return nil
	}
	var kb string // K's encoding, during the snapshot
	if l.seen != nil {
		b, err := l.keyCodec.encode(nil, &k)
		if err != nil {
			cnt.decodeErrors.Add(1)
			return nil
		}
		kb = string(b)
		l.seen[kb] = struct{}{}
		delete(l.full, kb)
	}
	if e.Operation() != js.KeyValuePut {
		if err := l.delete(k); err != nil {
			return err
		}
		cnt.delivered.Add(1)
		return nil
	}
	v, err := l.value(e.Value())
	if err != nil {
		cnt.decodeErrors.Add(1)
		// The bucket holds no value the map can take: the key is absent.
		return l.delete(k)
	}
	if err := l.m.Put(k, v); err != nil {
		if !errors.Is(err, maps.ErrFull) {
			return err
		}
		if l.seen != nil {
			// Entries the snapshot lacks may take the room: try again
			// once they are deleted (synced).
			l.full[kb] = kv[K, V]{k, v}
			return nil
		}
		cnt.dropped.Add(1)
		return nil
	}
	cnt.delivered.Add(1)
	return nil
}

// kv is a key and its value.
type kv[K, V any] struct {
	k K
	v V
}

// delete removes k from the map if it is there.
func (l *mirrorLoop[K, V]) delete(k K) error {
	err := l.m.Delete(k)
	switch {
	case err == nil:
		l.mi.h.cnt.deleted.Add(1)
		return nil
	case errors.Is(err, maps.ErrKeyNotExist):
		return nil
	}
	return err
}

// synced ends the snapshot the first time the watch marks its end: every
// map entry whose key the snapshot lacks is deleted, the snapshot's puts
// that found the map full are tried again (counted Dropped if they still
// do not fit), then Synced() is closed. Later marks (of a watch resumed
// from a revision) do nothing.
func (l *mirrorLoop[K, V]) synced() error {
	if l.seen == nil {
		return nil
	}
	var stale []K
	var err error
	for k := range l.m.Keys(&err) {
		b, encErr := l.keyCodec.encode(nil, &k)
		if encErr != nil {
			return encErr
		}
		if _, ok := l.seen[string(b)]; !ok {
			stale = append(stale, k)
		}
	}
	if err != nil {
		return fmt.Errorf("list the map's keys: %w", err)
	}
	for _, k := range stale {
		if err := l.delete(k); err != nil {
			return err
		}
	}
	cnt := &l.mi.h.cnt
	for kb, e := range l.full {
		delete(l.full, kb)
		switch err := l.m.Put(e.k, e.v); {
		case err == nil:
			cnt.delivered.Add(1)
		case errors.Is(err, maps.ErrFull):
			cnt.dropped.Add(1)
		default:
			return err
		}
	}
	l.seen = nil
	close(l.mi.synced)
	return nil
}

// rewatch replaces a watch that ended with one from the revision after the
// last applied, trying again with backoff until it succeeds or ctx or
// Close stop it.
func (l *mirrorLoop[K, V]) rewatch(ctx context.Context, retry *backoff) error {
	l.stopWatch()
	for {
		var opts []js.WatchOpt
		if l.seen == nil {
			opts = append(opts, js.ResumeFromRevision(l.last+1))
		} else {
			// Still in the snapshot: start it again.
			clear(l.seen)
			l.mi.h.cnt.dropped.Add(uint64(len(l.full))) // read again, counted again
			clear(l.full)
		}
		w, err := l.kv.WatchAll(ctx, opts...)
		if err == nil {
			l.w = w
			return nil
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if errors.Is(err, js.ErrConnectionClosed) || errors.Is(err, js.ErrBucketNotFound) || errors.Is(err, js.ErrStreamNotFound) {
			return fmt.Errorf("watch again from revision %d: %w", l.last+1, err)
		}
		t := time.NewTimer(retry.next())
		select {
		case <-t.C:
		case <-l.mi.h.closing:
			t.Stop()
			return errStopping
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		}
	}
}

// stopWatch ends the current watch and takes what it still delivers until
// it closes its channel, so nats.go's delivery goroutine, which may be
// blocked on that channel, can exit.
func (l *mirrorLoop[K, V]) stopWatch() {
	if l.w == nil {
		return
	}
	_ = l.w.Stop()
	for range l.w.Updates() {
	}
	l.w = nil
}
