// Package jetstream carries bpfchan's channels beyond one machine, on NATS
// JetStream: [Forward] ships the records of a durable BPF ring
// (pump.RingBufAcked) to a stream exactly once, a [Publisher] sends the
// values of a channel to a stream, a [Consumer] turns a stream's consumer
// back into a channel, and a [Mirror]
// keeps a BPF hash map equal to a KV bucket, so a fleet of nodes takes its
// configuration from one place. It is a module of its own
// (github.com/bpfchan/bpfchan/jetstream), so the core module never requires
// NATS; it stands to the core as an exporter to a library. It works on
// nats.go's jetstream package (imported here as js) and accepts its
// interfaces (js.JetStream, js.Consumer, js.KeyValue), never a concrete
// client.
//
// # Ownership and stopping
//
// Every handle follows the core's rules. A constructor checks what it can
// (a subject no stream captures or with wildcards, a stream whose
// MaxMsgSize leaves no room for a record, a consumer that is not
// explicit-ack, a map that is not a hash map or whose sizes differ from
// K's and V's, a bucket that no longer exists, an option the constructor
// does not take) and then starts one goroutine, owned by
// the handle: Wait and Close return only after it has exited, and Done() is
// closed then. Close is graceful: a Publisher publishes every value whose
// send completed and waits for every acknowledgement (with the server gone
// that lasts as long as ctx allows); a Forwarder takes no more records,
// waits for the acknowledgements of what it published, acknowledges them
// to the ring and closes its source; a Consumer pulls no more messages and
// delivers the records the client already holds; a Mirror stops, leaving
// the map as it is. Cancelling ctx aborts at once; Wait then returns
// context.Cause(ctx). Stats account for every value: once a handle has
// stopped, Received == Delivered + Dropped + DecodeErrors. Each handle is a
// metrics.Handle of the core's metrics package (MetricKind,
// MetricCounters), exported as bpfchan_jetstream_<kind>_<counter>_total.
// Errors are one line and name the subject, stream, consumer or bucket
// (and map) concerned.
//
// No handle lets a panic of user code on data (T's MarshalBinary or
// UnmarshalBinary, a WithEncoder, WithDecoder, WithKeyDecoder or
// WithValueDecoder function) escape its goroutine. A Consumer and a Mirror
// take data from the network, which every node of a fleet may share: a
// decoding that panics is a decode error, counted, and they go on (else
// one bad message would stop every Consumer that meets it). A Publisher
// and a Forwarder encode values of the local program: an encoding that
// panics stops them with an error matching ErrPanic (a Forwarder's record
// stays in the ring).
//
// nats.go runs goroutines of its own for a connection and its
// subscriptions; they belong to the connection, which the caller closes.
//
// # The retry policy
//
// Publisher and Forward publish with async publishes and share one retry
// policy: a publish that fails, or that no PubAck answers within
// WithAckWait, is sent again with the same message (the same Nats-Msg-Id,
// so the stream's duplicate window drops a copy it already holds), after a pause that starts at the WithRetry minimum, doubles while
// failures go on and starts again after an acknowledgement; on a
// reconnection what waits is sent at once. It is given up only when ctx is
// cancelled or the error is permanent (the connection closed for good, a
// message the server refuses whatever happens); what was never acknowledged
// is then counted Dropped (a Forwarder's stay in the ring). Dropped means
// "never acknowledged", not "never stored": a message still in the connection's reconnect buffer may reach
// the stream later. Retries can change the order of messages in the stream.
// A message is sent again with its ID only within the stream's duplicate
// window: a Forwarder first looks for a message it first sent more than
// half the window ago in the stream (see "Forward: exactly once"); a
// Publisher does not, so after an outage longer than the window during
// which PubAcks were lost, its messages in flight are stored twice.
// Publishes go through a JetStream context of the handle's own over the
// caller's connection, so its acknowledgements and timeouts neither see nor
// disturb the caller's async publishes.
//
// # Messages
//
// Every message carries the header HeaderNode (WithNode, default the host
// name). Forward's messages also carry HeaderRing (the ring's identity: the
// kernel's boot ID and the map's ID) and HeaderPos (the record's position
// in the ring), and the message ID "node/ring/pos", so any NATS client can
// check exactly-once delivery by (node, ring, Pos) without this package.
// The payload is T's binary encoding: for a fixed-size T (binary.Size(T) >
// 0) its bytes in native byte order, as the kernel lays the record out (so
// producers and consumers share a byte order; every common Linux fleet is
// little-endian); a T implementing encoding.BinaryMarshaler and
// BinaryUnmarshaler uses them; a []byte is the payload itself; WithEncoder
// and WithDecoder replace all of that. A fixed-size T with padding is
// encoded field by field (encoding/binary), so one with an unexported field
// is refused at construction; a bool decodes to true from any byte but 0.
// This is the core module's codec, the same bytes both ways. A packed
// message (WithPacked:
// HeaderCount set; HeaderPos is then its first record's position,
// HeaderLast its last record's, and its ID "node/ring/first-last") holds
// HeaderCount such encodings, each prefixed by its length as a
// little-endian uint32. Messages are cut to fit both the connection's
// maximum payload and the stream's MaxMsgSize, headers included; a
// Publisher's value that does not fit is counted in DecodeErrors.
//
// # Consumer: at least once
//
// A Consumer delivers each record of each message as a *Msg[T] and the
// receiver acknowledges it with Msg.Ack (or Msg.AckSync, which waits for
// the server's confirmation). A message is acknowledged on the server once
// every record of it is; one that is not acknowledged within the
// consumer's AckWait is delivered again (Msg.Delivered counts). That needs
// a consumer with AckExplicit, the default: AckAll and AckNone are refused.
// A record that does not decode (a panic of the decoding included) is
// counted in Stats.DecodeErrors and the others of its message are
// delivered; a message none of whose records decodes, or whose headers or
// packing do not parse (counted once), is terminated, so the server does
// not deliver it again.
//
// # Mirror
//
// A Mirror reads the bucket's snapshot first: every key put into the map,
// every map entry whose key the snapshot lacks deleted, then the puts that
// found the map full (of such entries) tried again; then Synced() is
// closed and puts and deletes follow as they happen. Revision and
// WaitRevision tell how far the map has caught up. Keys travel as base64url
// without padding of K's binary encoding (WithKeyDecoder reads other forms,
// such as plain names put with the nats CLI); values as V's binary encoding
// (or WithValueDecoder's). A value of the wrong size is counted in
// Stats.DecodeErrors and its key treated as absent: the map never holds a
// value the bucket no longer has. A put the full map cannot hold is counted
// Dropped and the Mirror goes on. The watch is nats.go's ordered consumer:
// after a disconnection, or a restart of the server on its store, it
// resumes from the revision after the last one delivered, with no gap; it
// notices a restarted server through missing idle heartbeats (the server
// sends one every 5 seconds to an ordered consumer), so it resumes some
// seconds after the server is back. If the watch ends instead, the Mirror
// watches again from its last applied revision. Hazards: an entry
// the bucket drops by its MaxAge leaves no delete marker unless the bucket
// asks for them (LimitMarkerTTL), so the Mirror cannot see it go; delete
// markers purged (PurgeDeletes) while the Mirror is away are missed too.
//
// # Forward: exactly once, and what that covers
//
// A Forwarder acknowledges a record to the ring only once the stream has
// acknowledged it and every record before it (PubAcks arrive out of order;
// the ring's position moves at the end of the contiguous acknowledged
// prefix). What the ring delivered and the stream did not acknowledge stays
// in the ring, and the ring's next reader, in this process or another
// through a pinned map, gets it again with the same Pos. Duplicates are
// kept out two ways: a publish sent again carries the same message ID,
// which the stream drops within its duplicate window (ForwardStream sets
// one hour); and at every start Forward reads, headers only, what the
// stream holds of the ring from the ring's acknowledged position on, and
// skips exactly those records. That read does not depend on the window:
// it is what makes a restart later than the window safe. A running
// Forwarder does the same before it sends a message again that it first
// sent (or last found missing) more than half the window ago: after an
// outage long enough for the window to forget a message whose PubAck was
// lost, it finds the message in the stream and does not store it twice.
//
// The skip is by what the stream holds, never by the highest position seen:
// with async publishes a publish can fail (lost in a disconnection) while a
// later one is stored, and a retried publish lands after later ones, so the
// subject's last message says nothing of the records below it. Skipping
// "at or below the last message's position" would lose the failed record
// if the agent died before retrying it; Forward publishes it, and only it.
//
// Cost of the read: one request for the subject's last message, a
// binary search over the stream's sequence (one message per step, about
// log2 of the stream's length), and a headers-only read of the subject's
// messages from about a mebibyte of ring positions below the acknowledged
// position to the end (a Forwarder never publishes a record more than that
// span beyond the oldest one the stream has not acknowledged, so nothing
// older can hold a record to skip): at most one message per record of that
// mebibyte (about 44,000 for 16-byte records one per message, a few
// hundred when packed). Nothing is read when the subject's last message is
// not this node's and ring's. It runs at the start, and during a run only
// before a resend later than half the duplicate window (while it runs the
// Forwarder handles no other event).
//
// Covered:
//
//   - a crash of the agent at any moment (SIGKILL included), before or after
//     a publish, a PubAck or the ring's acknowledgement: no record is lost
//     (the ring keeps what the stream did not acknowledge) and none is
//     stored twice;
//   - a restart later than the duplicate window, on a subject only this
//     node publishes to ("<prefix>.<node>"), with gaps or reordering left
//     by failed publishes: the start-up read skips exactly what is stored;
//   - a restart of the server on its store, a disconnection, of any
//     length (nats.MaxReconnects(-1) keeps a Forwarder running across
//     them): publishes are sent again with the same IDs until acknowledged;
//     one first sent more than half the duplicate window ago is first
//     looked for in the stream, on a subject only this node publishes to;
//   - packed messages on a stream with a MaxMsgSize: they are cut to fit,
//     headers included (a Forward whose stream leaves no room for one
//     record fails at construction, naming the stream).
//
// Not covered:
//
//   - a crash of the server's machine with an R1 stream: a PubAck means the
//     server has the message, not that it is on disk (JetStream syncs its
//     file store every 2 minutes by default), so acknowledged messages of
//     the last sync interval can vanish, after the ring has released their
//     records. Replicas (R3) cover the loss of one server's machine: a
//     PubAck then means a quorum of servers holds the message. The servers'
//     sync "always" covers a power cut or OS crash of every server at once:
//     each write is synced to disk before its PubAck (with R3, the
//     replicated log, on a quorum). Both together cover the most. What each
//     costs in throughput is measured by BenchmarkDurability; the figures
//     are in PERFORMANCE.md at the repository's root;
//   - a subject other nodes publish to: the start-up read (and the look
//     before a late resend) stops at another node's message and skips
//     nothing, so only the message IDs, within the duplicate window, keep
//     copies out: a restart, or an outage during which PubAcks were lost,
//     longer than the window stores copies (and packed messages are cut
//     where the ring's batches end, which a restart need not repeat);
//   - a publish of a previous run that reaches the stream after the next
//     run's start-up read (the last bytes of a killed process's socket, a
//     Forwarder aborted in the same process with publishes still in the
//     connection's buffers): within the duplicate window its ID drops the
//     copy for one message per record; a packed copy with other boundaries
//     stays; likewise a copy still travelling (in a connection's buffers)
//     when a running Forwarder looks before a late resend, that reaches the
//     stream after the window;
//   - a source the caller read from before handing it to Forward: Forward
//     acknowledges the ring cumulatively, so records the caller took and
//     did not forward are released, lost without a counter. Hand Forward a
//     source no one has received from;
//   - two Forwarders on one ring or one subject at once, or a ring's
//     records removed from the stream by its limits (MaxAge, MaxMsgs,
//     MaxBytes) before the ring released them (they are published again);
//   - what never reached the ring: a full ring makes the producer's reserve
//     fail, which its own counters show; a map gone (a reboot, an unpinned
//     ring closed) loses what it held.
//
// Retries can change the order of messages in the stream; without failed
// publishes a ring's records are stored in ring order. Consumers that need
// order sort by HeaderPos.
//
// A Publisher alone gives at-least-once publication with deduplication of
// its own retries inside the stream's duplicate window: after an outage
// longer than the window during which PubAcks were lost, what it had in
// flight is stored twice.
package jetstream
