package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"
)

// outbox is the one retry policy of this package (DESIGN: Publisher and
// Forward share it). It publishes messages with async publishes and keeps
// each one until the stream acknowledges it: a publish that fails, or that
// no PubAck answers within the ack wait, is sent again with the same
// message (so the same Nats-Msg-Id: the stream's duplicate window drops a
// copy it already holds), after a backoff that grows while failures go on
// and is reset by the next acknowledgement. Nothing is given up while the
// owner runs: only the owner's stop (ctx cancelled, a permanent error)
// abandons what is unacknowledged, and the owner counts it.
//
// A message whose copy may have left the stream's duplicate window is not
// sent again blindly: when the owner gives a recheck (Forward), a message
// first sent (or last found missing) more than stale ago is first looked
// for in the stream, and one the stream holds is reported acknowledged
// without a PubAck. Without it (Publisher), a resend after the window
// stores a second copy of a message whose PubAck was lost.
//
// It publishes through a JetStream context of its own over the caller's
// connection, so its acknowledgements, ack timeouts and cleanup neither see
// nor disturb the caller's own async publishes (and the caller's
// CleanupPublisher cannot fail ours). Every method but the callbacks runs
// on the owner's goroutine; the callbacks, run by nats.go's goroutines,
// only queue an event and never block.
type outbox struct {
	nc      *nats.Conn
	pub     js.JetStream
	max     int
	unacked map[*nats.Msg]*entry // sent or waiting to be sent again
	retry   []*entry             // failed, to be sent again when the timer fires
	backoff backoff
	timer   *time.Timer
	timerC  <-chan time.Time // timer.C while armed, else nil
	status  chan nats.Status // the connection's CONNECTED and CLOSED events
	retries *atomic.Uint64   // the owner's Stats.Retries

	// recheck, when set, reports which of the late messages the stream
	// holds already; stale is how old a message is late at. Both are set
	// by the owner before its first publish.
	recheck func(ctx context.Context, late []*entry) (held []bool, err error)
	stale   time.Duration
	now     func() time.Time

	mu      sync.Mutex
	events  []event
	stopped bool
	notify  chan struct{} // one token: events are waiting
}

// entry is one message until its PubAck.
type entry struct {
	msg *nats.Msg
	n   int    // the values it carries, counted once it is acknowledged
	id  uint64 // the owner's tag (Forward: the message's place in its in-flight queue)
	// sent is when it was first sent, or last found missing from the
	// stream: a copy stored since then is within the duplicate window.
	sent time.Time
}

// event is what nats.go reported for one send of a message, or (found)
// that the stream was found to hold it.
type event struct {
	msg   *nats.Msg
	ack   *js.PubAck
	err   error
	found bool
}

// newOutbox makes the outbox of a handle publishing on nc with c's
// publishing options (WithMaxPending, WithAckWait, WithRetry), counting the
// publishes it sends again in retries.
func newOutbox(nc *nats.Conn, c config, retries *atomic.Uint64) (*outbox, error) {
	o := &outbox{
		nc:      nc,
		max:     c.maxPending,
		unacked: make(map[*nats.Msg]*entry, c.maxPending),
		backoff: backoff{min: c.retryMin, max: c.retryMax},
		notify:  make(chan struct{}, 1),
		retries: retries,
		now:     time.Now,
	}
	pub, err := js.New(nc,
		js.WithPublishAsyncMaxPending(c.maxPending),
		js.WithPublishAsyncTimeout(c.ackWait),
		js.WithPublishAsyncAckHandler(func(_ js.JetStream, m *nats.Msg, a *js.PubAck) { o.report(event{msg: m, ack: a}) }),
		js.WithPublishAsyncErrHandler(func(_ js.JetStream, m *nats.Msg, err error) { o.report(event{msg: m, err: err}) }),
	)
	if err != nil {
		return nil, fmt.Errorf("publishing context: %w", err)
	}
	o.pub = pub
	o.status = nc.StatusChanged(nats.CONNECTED, nats.CLOSED)
	return o, nil
}

// report queues what nats.go said about a send. It never blocks: nats.go
// calls it from its own goroutines, also after the owner stopped.
func (o *outbox) report(e event) {
	o.mu.Lock()
	if o.stopped {
		o.mu.Unlock()
		return
	}
	o.events = append(o.events, e)
	o.mu.Unlock()
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

// full reports whether max messages are unacknowledged: the owner takes no
// new value until one is.
func (o *outbox) full() bool { return len(o.unacked) >= o.max }

// pending is the number of messages not yet acknowledged.
func (o *outbox) pending() int { return len(o.unacked) }

// publish sends a new message. A failure to send is retried like a failed
// publish; only a permanent one (the connection closed for good, a message
// the server can never take) is returned.
func (o *outbox) publish(e *entry) error {
	o.unacked[e.msg] = e
	e.sent = o.now()
	return o.send(e)
}

// send publishes e once. While the connection is away, nats.go keeps the
// message in its reconnect buffer and sends it on reconnection.
func (o *outbox) send(e *entry) error {
	if _, err := o.pub.PublishMsgAsync(e.msg); err != nil {
		if permanent(err) {
			return err
		}
		o.later(e)
	}
	return nil
}

// later queues e to be sent again when the retry timer fires.
func (o *outbox) later(e *entry) {
	o.retry = append(o.retry, e)
	if o.timerC != nil {
		return
	}
	d := o.backoff.next()
	if o.timer == nil {
		o.timer = time.NewTimer(d)
	} else {
		o.timer.Reset(d)
	}
	o.timerC = o.timer.C
}

// handle processes the events nats.go reported, calling acked for each
// message the stream acknowledged (with a nil PubAck for one the recheck
// found in the stream). It returns a permanent error.
func (o *outbox) handle(acked func(e *entry, a *js.PubAck)) error {
	o.mu.Lock()
	evs := o.events
	o.events = nil
	o.mu.Unlock()
	for _, ev := range evs {
		e, ok := o.unacked[ev.msg]
		if !ok {
			continue // found by the recheck: a late answer to an earlier send
		}
		if ev.found || ev.err == nil {
			delete(o.unacked, ev.msg)
			o.backoff.reset()
			acked(e, ev.ack)
			continue
		}
		if permanent(ev.err) {
			return ev.err
		}
		o.later(e)
	}
	return nil
}

// resend sends again what failed, once the retry timer fired, counting
// each in retries; it returns a permanent error, or ctx's cause.
func (o *outbox) resend(ctx context.Context) error {
	o.timerC = nil
	due := o.retry
	o.retry = nil
	if o.nc.IsConnected() {
		var err error
		if due, err = o.checkLate(ctx, due); err != nil {
			return err
		}
	}
	for i, e := range due {
		if !o.nc.IsConnected() {
			// Still away: a copy of each sits in the reconnect buffer
			// already; keep them for the next round.
			for _, e := range due[i:] {
				o.later(e)
			}
			break
		}
		if err := o.send(e); err != nil {
			return err
		}
		o.retries.Add(1)
	}
	return nil
}

// checkLate looks for the late messages of due in the stream (see
// recheck) and returns those to send again now. The ones the stream holds
// are queued as found; when the look fails, the late ones wait for the
// retry timer, unsent: sending them blindly could store them twice.
func (o *outbox) checkLate(ctx context.Context, due []*entry) ([]*entry, error) {
	if o.recheck == nil {
		return due, nil
	}
	now := o.now()
	var late, send []*entry
	for _, e := range due {
		if now.Sub(e.sent) >= o.stale {
			late = append(late, e)
		} else {
			send = append(send, e)
		}
	}
	if len(late) == 0 {
		return due, nil
	}
	held, err := o.recheck(ctx, late)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		for _, e := range late {
			o.later(e)
		}
		return send, nil
	}
	var found []event
	for i, e := range late {
		if held[i] {
			found = append(found, event{msg: e.msg, found: true})
			continue
		}
		e.sent = now // missing now: a copy sent from here on is within the window
		send = append(send, e)
	}
	if len(found) > 0 {
		o.mu.Lock()
		o.events = append(o.events, found...)
		o.mu.Unlock()
		select {
		case o.notify <- struct{}{}:
		default:
		}
	}
	return send, nil
}

// statusChanged handles an event of the connection: on a reconnection it
// sends again at once what waits for the retry timer; a connection closed
// for good is a permanent error.
func (o *outbox) statusChanged(ctx context.Context, st nats.Status) error {
	if st == nats.CLOSED || o.nc.IsClosed() {
		return fmt.Errorf("publish: %w", nats.ErrConnectionClosed)
	}
	o.backoff.reset()
	if o.timerC == nil {
		return nil
	}
	o.timer.Stop()
	return o.resend(ctx)
}

// stop abandons every message not yet acknowledged and returns how many
// values they carried. Acknowledgements arriving afterwards are ignored.
func (o *outbox) stop() (abandoned int) {
	o.mu.Lock()
	o.stopped = true
	o.events = nil
	o.mu.Unlock()
	if o.timer != nil {
		o.timer.Stop()
	}
	o.nc.RemoveStatusListener(o.status)
	// Unsubscribes the private context's reply subject and ends its status
	// listener; its own pending publishes fail into the ignored callback.
	o.pub.CleanupPublisher()
	for _, e := range o.unacked {
		abandoned += e.n
	}
	clear(o.unacked)
	o.retry = nil
	return abandoned
}

// permanent reports whether err can never clear up by sending the same
// message again: the connection is closed for good, or the server refused
// the message itself (too large, a bad subject, a 400 from JetStream).
func permanent(err error) bool {
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrMaxPayload) ||
		errors.Is(err, nats.ErrBadSubject) || errors.Is(err, js.ErrJetStreamPublisherClosed) {
		return true
	}
	var api *js.APIError
	return errors.As(err, &api) && api.Code == 400
}

// backoff is the pause before failed publishes are sent again: min, then
// doubling up to max, back to min after a success.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	switch {
	case b.cur == 0:
		b.cur = b.min
	case b.cur < b.max:
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }
