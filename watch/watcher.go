package watch

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/bpfchan/bpfchan/chans"
	"github.com/bpfchan/bpfchan/internal/backoff"
	"github.com/bpfchan/bpfchan/internal/snapshot"
)

var _ chans.Receiver[int] = (*Watcher[int])(nil)

// Stats counts what a watcher did. Once it has stopped — as soon as C() is
// closed, before Wait returns —
//
//	Changes == Events + Coalesced + Discarded + DecodeErrors
//
// and while it runs the difference is Pending.
type Stats struct {
	Polls        uint64        // polls made, failed ones and the baseline read at construction included
	Changes      uint64        // changes the polls observed (with WithInitial, the initial state too)
	Events       uint64        // events delivered on C()
	Coalesced    uint64        // changes merged into, or cancelled out with, a pending event of the same key
	Discarded    uint64        // pending events dropped because ctx ended or a poll failed
	DecodeErrors uint64        // changes whose key or value failed to decode, skipped
	Pending      int           // events waiting for the consumer (at most one per key)
	PollTime     time.Duration // total time spent polling
	Interval     time.Duration // the pause before the next poll
}

// PerPoll is the mean time of one poll.
func (s Stats) PerPoll() time.Duration {
	if s.Polls == 0 {
		return 0
	}
	return s.PollTime / time.Duration(s.Polls)
}

// poller is a snapshot.Table or snapshot.Key.
type poller interface {
	Poll(emit snapshot.Emit) (int, error)
	Close() error
}

// Watcher delivers the changes its goroutine observes by polling its own
// clone of a map. It implements chans.Receiver[T]. Its one goroutine polls,
// coalesces and sends; it stops when ctx is done, when Close is called, or
// when a poll fails, then makes Stats final, releases its clone, closes C()
// and finally Done.
type Watcher[T any] struct {
	name   string
	ctx    context.Context
	c      chan T
	stop   chan struct{}
	done   chan struct{}
	kick   chan chan struct{}
	once   sync.Once
	err    error // set before done is closed
	src    poller
	q      *queue
	emit   snapshot.Emit
	decode func(*pending) (T, error)
	pauses backoff.Backoff

	// Goroutine-owned.
	coalesced uint64 // by the poll in progress
	next      T      // the decoded front of q, when have
	have      bool

	mu    sync.Mutex
	stats Stats
}

// newWatcher builds a watcher around src. start must be called to read the
// baseline and start the goroutine.
func newWatcher[T any](ctx context.Context, name string, src poller, q *queue, decode func(*pending) (T, error), c config) *Watcher[T] {
	w := &Watcher[T]{
		name:   name,
		ctx:    ctx,
		c:      make(chan T),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		kick:   make(chan chan struct{}),
		src:    src,
		q:      q,
		decode: decode,
		pauses: c.pauses(),
	}
	w.emit = func(kind snapshot.Kind, key, old, new []byte) {
		w.coalesced += uint64(q.add(kind, key, old, new))
	}
	return w
}

// start reads the baseline (reporting it when initial is set) and starts the
// goroutine. baseline, when not nil, runs after the baseline poll with the
// number of changes it found.
func (w *Watcher[T]) start(initial bool, baseline func(n int)) error {
	if err := w.ctx.Err(); err != nil {
		w.src.Close()
		return fmt.Errorf("watch %s: %w", w.name, context.Cause(w.ctx))
	}
	emit := w.emit
	if !initial {
		emit = nil
	}
	n, err := w.poll(emit)
	if err != nil {
		w.src.Close()
		return err
	}
	if baseline != nil {
		baseline(n)
	}
	d := w.pauses.Next()
	w.mu.Lock()
	w.stats.Interval = d
	w.mu.Unlock()
	go w.run(d)
	return nil
}

// C returns the channel of changes. It is closed when the watcher stops,
// once Stats is final.
func (w *Watcher[T]) C() <-chan T { return w.c }

// Done returns a channel that is closed when the watcher's goroutine has
// exited: after that, Wait returns at once.
func (w *Watcher[T]) Done() <-chan struct{} { return w.done }

// Wait blocks until the watcher's goroutine has exited and returns why it
// stopped: nil after Close, context.Cause(ctx) after the context was
// cancelled (also when that ends a Close's delivery), otherwise the error of
// the poll that failed.
func (w *Watcher[T]) Wait() error {
	<-w.done
	return w.err
}

// Close stops the watcher gracefully: it polls one last time, so that every
// change made before Close is reported, delivers every pending change on
// C(), closes C() and returns Wait's error (nil unless that poll failed).
// Close therefore returns once the consumer has taken what was pending: a
// consumer that has stopped reading must cancel ctx instead, which discards
// what is pending (counted in Stats.Discarded), also during a Close. So a
// consumer that may leave early (a return from its range loop) must not
// `defer w.Close()`, which would wait forever: it cancels the ctx it gave
// the constructor (`defer cancel()`), which stops the watcher at once. Close
// may be called more than once and from any goroutine.
func (w *Watcher[T]) Close() error {
	w.once.Do(func() { close(w.stop) })
	return w.Wait()
}

// Stats returns a consistent copy of the watcher's counters.
func (w *Watcher[T]) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// poll runs one poll and accounts for it.
func (w *Watcher[T]) poll(emit snapshot.Emit) (int, error) {
	start := time.Now()
	n, err := w.src.Poll(emit)
	d := time.Since(start)
	w.mu.Lock()
	w.stats.Polls++
	w.stats.PollTime += d
	if emit != nil {
		w.stats.Changes += uint64(n)
	}
	w.stats.Coalesced += w.coalesced
	w.stats.Pending = w.q.live
	w.mu.Unlock()
	w.coalesced = 0
	if n > 0 { // the front may have changed: decode it again
		var zero T
		w.next, w.have = zero, false
	}
	if err != nil {
		return n, fmt.Errorf("watch %s: poll: %w", w.name, err)
	}
	return n, nil
}

// pollNow makes the goroutine poll at once and waits until that poll is
// accounted for. It reports false when the watcher stopped first. Tests use
// it to drive polls deterministically.
func (w *Watcher[T]) pollNow() bool {
	done := make(chan struct{})
	select {
	case w.kick <- done:
	case <-w.done:
		return false
	}
	select {
	case <-done:
		return true
	case <-w.done:
		return false
	}
}

// run is the watcher's goroutine.
func (w *Watcher[T]) run(pause time.Duration) { w.finish(w.loop(pause)) }

// loop polls and delivers until ctx is done (an abort: it returns
// context.Cause(ctx), what is pending is discarded by finish), Close is
// called (after one last poll and the delivery of everything pending) or a
// poll fails, and returns why it stopped.
func (w *Watcher[T]) loop(pause time.Duration) error {
	timer := time.NewTimer(pause)
	defer timer.Stop()
	for {
		if w.ctx.Err() != nil { // an abort wins over a ready consumer
			return context.Cause(w.ctx)
		}
		next, ok := w.front()
		var out chan T
		if ok {
			out = w.c
		}
		var kicked chan struct{}
		select {
		case out <- next:
			w.sent()
			continue
		case <-timer.C:
		case kicked = <-w.kick:
		case <-w.stop:
			return w.drain()
		case <-w.ctx.Done():
			return context.Cause(w.ctx)
		}
		n, err := w.poll(w.emit)
		if err != nil {
			return err
		}
		if n > 0 {
			w.pauses.Reset()
		}
		d := w.pauses.Next()
		w.mu.Lock()
		w.stats.Interval = d
		w.mu.Unlock()
		if kicked != nil {
			close(kicked)
		}
		timer.Reset(d)
	}
}

// front returns the oldest pending change, decoded, and false when nothing
// is pending. Changes that fail to decode are dropped and counted. The
// change stays queued (and counted as pending) until sent; a poll that
// observes any change makes it decode again (see poll), so what is sent is
// never staler than the queue.
func (w *Watcher[T]) front() (T, bool) {
	for !w.have {
		p := w.q.front()
		if p == nil {
			var zero T
			return zero, false
		}
		v, err := w.decode(p)
		if err != nil {
			w.q.pop()
			w.mu.Lock()
			w.stats.DecodeErrors++
			w.stats.Pending = w.q.live
			w.mu.Unlock()
			continue
		}
		w.next, w.have = v, true
	}
	return w.next, true
}

// sent accounts for the delivery of the change front returned.
func (w *Watcher[T]) sent() {
	var zero T
	w.next, w.have = zero, false
	w.q.pop()
	w.mu.Lock()
	w.stats.Events++
	w.stats.Pending = w.q.live
	w.mu.Unlock()
}

// drain is the graceful end after Close: one last poll, so that every change
// made before Close is reported, then the delivery of every pending change.
// It returns nil, the last poll's error once the rest is delivered, or
// context.Cause(ctx) when ctx ends first (what remains is then discarded by
// finish).
func (w *Watcher[T]) drain() error {
	if w.ctx.Err() != nil { // aborted as well: no last sweep
		return context.Cause(w.ctx)
	}
	_, perr := w.poll(w.emit)
	for {
		next, ok := w.front()
		if !ok {
			return perr
		}
		select {
		case w.c <- next:
			w.sent()
		case <-w.ctx.Done():
			return context.Cause(w.ctx)
		}
	}
}

// inject queues a change that no poll observed (the initial absence of a
// watched key). Only before the goroutine starts.
func (w *Watcher[T]) inject(kind snapshot.Kind, key []byte) {
	w.q.add(kind, key, nil, nil)
	w.mu.Lock()
	w.stats.Changes++
	w.stats.Pending = w.q.live
	w.mu.Unlock()
}

// finish ends the goroutine: it records why it stopped, discards what is
// still pending (after an abort or a failed poll), releases the poller and
// its clone, and only then closes C() and Done. Stats is therefore final
// when C() closes: a consumer that ranges over C() reads the final counters
// without calling Wait.
func (w *Watcher[T]) finish(err error) {
	if cerr := w.src.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("watch %s: release: %w", w.name, cerr)
	}
	w.err = err
	w.mu.Lock()
	w.stats.Discarded += uint64(w.q.clear())
	w.stats.Pending = 0
	w.mu.Unlock()
	close(w.c)
	close(w.done)
}
