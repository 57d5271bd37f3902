package jetstream

import "sync/atomic"

// Stats counts what a handle did. Once a handle has stopped,
// Received == Delivered + Dropped + DecodeErrors.
type Stats struct {
	// Publisher: values taken from C(). Forwarder: records taken from the
	// ring. Consumer: records taken out of messages (a packed message holds
	// several; a message whose headers or packing do not parse counts as
	// one). Mirror: bucket entries (puts and deletes) read from the watch.
	Received uint64
	// Publisher: values whose PubAck arrived. Forwarder: records whose
	// message the stream acknowledged, or that it was found to hold already
	// (Skipped). Consumer: records sent on C(). Mirror: entries applied to
	// the map (puts and deletes).
	Delivered uint64
	// Publisher: values never acknowledged when ctx was cancelled or a
	// permanent error stopped it. Forwarder: records taken from the ring
	// and not acknowledged by the stream when it stopped (they stay in the
	// ring, and its next reader gets them again). Consumer: records taken
	// back from C()'s buffer after ctx was cancelled (their messages are
	// redelivered by the server). Mirror: puts the full map could not hold
	// (a put of the snapshot is tried again once the entries the snapshot
	// lacks are deleted, and counted only if it still does not fit).
	Dropped uint64
	// Publisher and Forwarder: values or records that failed to encode (or
	// that no message can carry). Consumer: records that failed to decode,
	// a panic of the decoding included (a message none of whose records
	// decodes is terminated). Mirror: keys or values that failed to
	// decode, a panic included.
	DecodeErrors uint64
	// Publisher and Forwarder: publishes sent again after a failure or no
	// answer.
	Retries uint64
	// Publisher and Forwarder: PubAcks that reported a duplicate (a
	// publish the stream already held, dropped by its duplicate window).
	Duplicates uint64
	// Consumer: records acknowledged through Msg.Ack or Msg.AckSync.
	// Forwarder: records released to the ring by its Ack, the contiguous
	// prefix the stream holds (after a graceful Close, Acked == Delivered).
	Acked uint64
	// Forwarder: records found in the stream instead of published (again):
	// at the start, what a previous run published and did not acknowledge
	// to the ring; during a run, messages whose PubAck was lost, found
	// before a resend later than half the duplicate window. Counted in
	// Delivered too.
	Skipped uint64
	// Mirror: keys deleted from the map: for a delete in the bucket (that
	// entry is counted Delivered too), for a value that failed to decode
	// (counted in DecodeErrors), or for a key missing from the bucket's
	// snapshot (no entry of the bucket: counted nowhere else).
	Deleted uint64
}

// counters are a handle's live Stats: written by its goroutine (and, for
// Acked, by Msg.Ack), read by Stats at any time.
type counters struct {
	received, delivered, dropped, decodeErrors atomic.Uint64
	retries, duplicates, acked, deleted        atomic.Uint64
	skipped                                    atomic.Uint64
}

func (c *counters) load() Stats {
	return Stats{
		Received:     c.received.Load(),
		Delivered:    c.delivered.Load(),
		Dropped:      c.dropped.Load(),
		DecodeErrors: c.decodeErrors.Load(),
		Retries:      c.retries.Load(),
		Duplicates:   c.duplicates.Load(),
		Acked:        c.acked.Load(),
		Deleted:      c.deleted.Load(),
		Skipped:      c.skipped.Load(),
	}
}

// The metric kinds of this package's handles, as the core metrics package
// exports them (bpfchan_<kind>_<counter>_total).
const (
	kindPublisher = "jetstream_publisher"
	kindForwarder = "jetstream_forwarder"
	kindConsumer  = "jetstream_consumer"
	kindMirror    = "jetstream_mirror"
)

// emit calls f with the counters of s that the handle kind keeps, under
// their snake_case names.
func (s Stats) emit(kind string, f func(name string, value uint64)) {
	f("received", s.Received)
	f("delivered", s.Delivered)
	f("dropped", s.Dropped)
	f("decode_errors", s.DecodeErrors)
	switch kind {
	case kindPublisher:
		f("retries", s.Retries)
		f("duplicates", s.Duplicates)
	case kindForwarder:
		f("retries", s.Retries)
		f("duplicates", s.Duplicates)
		f("acked", s.Acked)
		f("skipped", s.Skipped)
	case kindConsumer:
		f("acked", s.Acked)
	case kindMirror:
		f("deleted", s.Deleted)
	}
}
