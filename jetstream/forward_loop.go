package jetstream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"

	"github.com/bpfchan/bpfchan/pump"
)

// forwardLoop is a Forwarder's goroutine.
type forwardLoop[T any] struct {
	f          *Forwarder
	src        *pump.AckSource[T]
	st         js.Stream
	ob         *outbox
	encode     func([]byte, *T) ([]byte, error)
	packed     bool
	maxPending int
	maxData    int // the largest payload a message carries
	node       string
	idPrefix   string // "node/ring/"
	nodeV      []string
	ringV      []string

	q       inflight
	skip    stored           // what the stream held of the ring at the start
	held    []pump.Record[T] // the batch being published
	next    int              // held[next:] is not published yet
	flushes []flushReq
}

// run takes batches from the ring and publishes them until Close was seen
// and every message published is acknowledged, or ctx is done, or an
// error stops it; then it closes the source.
func (l *forwardLoop[T]) run(ctx context.Context) (err error) {
	defer func() { err = l.finish(ctx, err) }()
	cnt := &l.f.h.cnt
	in := l.src.C()
	acked := func(e *entry, a *js.PubAck) {
		l.q.at(e.id).done = true
		cnt.delivered.Add(uint64(e.n))
		switch {
		case a == nil: // found in the stream by the re-read before a late resend
			cnt.skipped.Add(uint64(e.n))
		case a.Duplicate:
			cnt.duplicates.Add(1)
		}
	}
	closed := false // Close was seen: take no more records
	for {
		if closed && l.q.empty() {
			return nil
		}
		var recv <-chan []pump.Record[T]
		var closing <-chan struct{}
		if !closed {
			closing = l.f.h.closing
			if l.held == nil {
				recv = in
			}
		}
		select {
		case b, ok := <-recv:
			if !ok {
				return l.sourceStopped(ctx)
			}
			cnt.received.Add(uint64(len(b)))
			l.held, l.next = b, 0
		case <-closing:
			closed = true
			l.dropHeld()
		case <-l.ob.notify:
			if err := l.ob.handle(acked); err != nil {
				return err
			}
		case <-l.ob.timerC:
			if err := l.ob.resend(ctx); err != nil {
				return err
			}
		case st := <-l.ob.status:
			if err := l.ob.statusChanged(ctx, st); err != nil {
				return err
			}
		case r := <-l.f.flush:
			l.flushes = append(l.flushes, r)
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		if err := l.advance(ctx); err != nil {
			return err
		}
		// Records that need no message (skipped, refused by the encoder)
		// take a place in the queue but bring no PubAck to wake the loop:
		// publish on while the queue drains to empty, and stop only once a
		// message in flight at its front will.
		for !closed && l.held != nil {
			if err := l.publishHeld(); err != nil {
				return err
			}
			if err := l.advance(ctx); err != nil {
				return err
			}
			if !l.q.empty() {
				break
			}
		}
		l.answerFlushes(nil)
	}
}

// finish runs when the loop ends: it abandons what the stream has not
// acknowledged (it stays in the ring), closes the source and answers the
// Flushes still waiting.
func (l *forwardLoop[T]) finish(ctx context.Context, err error) error {
	cnt := &l.f.h.cnt
	cnt.dropped.Add(uint64(l.ob.stop()))
	l.dropHeld()
	if err != nil && ctx.Err() == nil {
		err = fmt.Errorf("forward to %q: %w", l.f.subject, err)
	}
	_ = l.src.Close() // nil, or the source's failure, which err already reports
	stopErr := err
	if stopErr == nil {
		stopErr = fmt.Errorf("flush to %q: the forwarder has stopped: %w", l.f.subject, ErrClosed)
	}
	l.answerFlushes(stopErr)
	return err
}

// sourceStopped is the loop's error when the source closed C() by itself:
// its ctx was cancelled (ours too, maybe) or it failed.
func (l *forwardLoop[T]) sourceStopped(ctx context.Context) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if err := l.src.Wait(); err != nil {
		return fmt.Errorf("ring %s: %w", l.f.ring, err)
	}
	return fmt.Errorf("ring %s: the source was closed: %w", l.f.ring, ErrClosed)
}

// dropHeld gives back the records taken from the ring and not published:
// they stay in the ring for its next reader.
func (l *forwardLoop[T]) dropHeld() {
	if l.held == nil {
		return
	}
	l.f.h.cnt.dropped.Add(uint64(len(l.held) - l.next))
	l.src.Recycle(l.held)
	l.held = nil
}

// publishHeld publishes the held batch as far as the bounds on what is in
// flight allow.
func (l *forwardLoop[T]) publishHeld() error {
	cnt := &l.f.h.cnt
	for l.next < len(l.held) && l.q.len() < l.maxPending {
		r := &l.held[l.next]
		if !l.q.empty() && r.Pos-l.q.front().first >= resumeSpan {
			break
		}
		if l.skip.covers(r.Pos) {
			l.q.push(slot{first: r.Pos, last: r.Pos, n: 1, done: true})
			cnt.delivered.Add(1)
			cnt.skipped.Add(1)
			l.next++
			continue
		}
		var err error
		if l.packed {
			err = l.publishPacked()
		} else {
			err = l.publishOne(r)
		}
		if err != nil {
			return err
		}
	}
	if l.next == len(l.held) {
		l.src.Recycle(l.held)
		l.held = nil
	}
	return nil
}

// failed counts the record at held[next], which cannot be published, and
// releases it with the others. Only an encoder's panic is returned: it
// stops the Forwarder before the record is released, so the record stays
// in the ring.
func (l *forwardLoop[T]) failed(err error) error {
	l.f.h.cnt.decodeErrors.Add(1)
	pos := l.held[l.next].Pos
	l.q.push(slot{first: pos, last: pos, done: true})
	l.next++
	if errors.Is(err, ErrPanic) {
		return fmt.Errorf("record at %d: %w", pos, err)
	}
	return nil
}

// publishOne publishes r (held[next]) as one message.
func (l *forwardLoop[T]) publishOne(r *pump.Record[T]) error {
	data, err := l.encode(nil, &r.Value)
	if err == nil && len(data) > l.maxData {
		err = fmt.Errorf("record at %d: %d bytes, more than a message carries here (%d)", r.Pos, len(data), l.maxData)
	}
	if err != nil {
		return l.failed(err)
	}
	msg := &nats.Msg{Subject: l.f.subject, Data: data, Header: l.header(r.Pos, r.Pos, 0)}
	id := l.q.push(slot{first: r.Pos, last: r.Pos, n: 1})
	l.next++
	return l.ob.publish(&entry{msg: msg, n: 1, id: id})
}

// publishPacked publishes the records from held[next] on as one packed
// message: up to a record the stream already holds, a record that fails to
// encode, the connection's maximum payload or the span the Forwarder may
// have in flight, whichever comes first.
func (l *forwardLoop[T]) publishPacked() error {
	start := l.next
	oldest := l.held[start].Pos
	if !l.q.empty() {
		oldest = l.q.front().first
	}
	var data []byte
	count := 0
	for l.next < len(l.held) {
		r := &l.held[l.next]
		if count > 0 && (l.skip.covers(r.Pos) || r.Pos-oldest >= resumeSpan) {
			break
		}
		mark := len(data)
		var err error
		data, err = l.encode(append(data, 0, 0, 0, 0), &r.Value)
		if err == nil && len(data) > l.maxData && count == 0 {
			err = fmt.Errorf("record at %d: %d bytes, more than a message carries here (%d)", r.Pos, len(data)-mark-packedPrefix, l.maxData-packedPrefix)
		}
		if err != nil {
			data = data[:mark]
			if count > 0 {
				break // the message ends before it; the next one starts with it
			}
			return l.failed(err)
		}
		if len(data) > l.maxData {
			data = data[:mark]
			break
		}
		binary.LittleEndian.PutUint32(data[mark:], uint32(len(data)-mark-packedPrefix))
		if count == 0 {
			// Size the payload for the batch from its first record.
			per := len(data)
			grown := make([]byte, len(data), min(l.maxData, per*(len(l.held)-start)))
			copy(grown, data)
			data = grown
		}
		count++
		l.next++
	}
	first, last := l.held[start].Pos, l.held[l.next-1].Pos
	msg := &nats.Msg{Subject: l.f.subject, Data: data, Header: l.header(first, last, count)}
	id := l.q.push(slot{first: first, last: last, n: count})
	return l.ob.publish(&entry{msg: msg, n: count, id: id})
}

// prefix is what a record takes in a message beside its encoding.
func (l *forwardLoop[T]) prefix() int {
	if l.packed {
		return packedPrefix
	}
	return 0
}

// header is the header of a message holding the records from first to
// last: count of them packed, or one (count 0) not packed.
func (l *forwardLoop[T]) header(first, last uint64, count int) nats.Header {
	pos := strconv.FormatUint(first, 10)
	if count == 0 {
		return nats.Header{
			js.MsgIDHeader: {l.idPrefix + pos},
			HeaderNode:     l.nodeV,
			HeaderRing:     l.ringV,
			HeaderPos:      {pos},
		}
	}
	lastS := strconv.FormatUint(last, 10)
	return nats.Header{
		js.MsgIDHeader: {l.idPrefix + pos + "-" + lastS},
		HeaderNode:     l.nodeV,
		HeaderRing:     l.ringV,
		HeaderPos:      {pos},
		HeaderCount:    {strconv.Itoa(count)},
		HeaderLast:     {lastS},
	}
}

// recheck is the outbox's look for late messages in the stream: it reads
// what the stream holds of the ring now, as Forward does at the start, and
// reports which of the late messages are in it.
func (l *forwardLoop[T]) recheck(ctx context.Context, late []*entry) ([]bool, error) {
	acked, _ := l.src.Positions()
	s, err := storedRecords(ctx, l.st, l.f.subject, l.node, l.f.ring, acked)
	if err != nil {
		return nil, err
	}
	held := make([]bool, len(late))
	for i, e := range late {
		sl := l.q.at(e.id)
		held[i] = s.holds(sl.first, sl.last)
	}
	return held, nil
}

// advance releases to the ring the records of the messages at the front
// of the queue that the stream holds, up to the first it does not.
func (l *forwardLoop[T]) advance(ctx context.Context) error {
	var last uint64
	n, moved := 0, false
	for !l.q.empty() && l.q.front().done {
		s := l.q.front()
		last, n, moved = s.last, n+s.n, true
		l.q.pop()
	}
	if !moved {
		return nil
	}
	if err := l.src.Ack(last); err != nil {
		select {
		case <-l.src.Done():
			return l.sourceStopped(ctx)
		default:
			return fmt.Errorf("ack ring %s at %d: %w", l.f.ring, last, err)
		}
	}
	l.f.h.cnt.acked.Add(uint64(n))
	return nil
}

// answerFlushes answers the Flushes whose target the ring's acknowledged
// position has reached; with a non-nil err, it answers the others with it.
func (l *forwardLoop[T]) answerFlushes(err error) {
	if len(l.flushes) == 0 {
		return
	}
	acked, _ := l.src.Positions()
	waiting := l.flushes[:0]
	for _, r := range l.flushes {
		switch {
		case acked-r.target < 1<<63: // acked >= target, as positions may wrap
			r.done <- nil
		case err != nil:
			r.done <- err
		default:
			waiting = append(waiting, r)
		}
	}
	clear(l.flushes[len(waiting):])
	l.flushes = waiting
}

// slot is one message in flight, or a record released without one.
type slot struct {
	first, last uint64 // the ring positions of its first and last record
	n           int    // the records the stream holds once done
	done        bool   // the stream holds it (or it needs no message)
}

// inflight is the queue of slots, oldest first: the messages published and
// not yet released to the ring, in ring order. Ids count the slots pushed.
type inflight struct {
	s    []slot
	head int
	base uint64 // the id of s[head]
}

func (q *inflight) empty() bool  { return q.head == len(q.s) }
func (q *inflight) len() int     { return len(q.s) - q.head }
func (q *inflight) front() *slot { return &q.s[q.head] }

func (q *inflight) at(id uint64) *slot { return &q.s[q.head+int(id-q.base)] }

func (q *inflight) push(s slot) (id uint64) {
	id = q.base + uint64(q.len())
	q.s = append(q.s, s)
	return id
}

func (q *inflight) pop() {
	q.head++
	q.base++
	switch {
	case q.head == len(q.s):
		q.s, q.head = q.s[:0], 0
	case q.head >= 1024 && 2*q.head >= len(q.s):
		n := copy(q.s, q.s[q.head:])
		q.s, q.head = q.s[:n], 0
	}
}
