// Package jetstream carries bpfchan's channels beyond one machine, on NATS
// JetStream: a [Publisher] sends the values of a channel to a stream, a
// [Consumer] turns a stream's consumer back into a channel, and a [Mirror]
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
// (a subject no stream captures, a map that is not a hash map or whose
// sizes differ from K's and V's, a bucket that no longer exists, an option
// the constructor does not take) and then starts one goroutine, owned by
// the handle: Wait and Close return only after it has exited, and Done() is
// closed then. Close is graceful: a Publisher publishes every value whose
// send completed and waits for every acknowledgement (with the server gone
// that lasts as long as ctx allows); a Consumer pulls no more messages and
// delivers the records the client already holds; a Mirror stops, leaving
// the map as it is. Cancelling ctx aborts at once; Wait then returns
// context.Cause(ctx). Stats account for every value: once a handle has
// stopped, Received == Delivered + Dropped + DecodeErrors. Each handle is a
// metrics.Handle of the core's metrics package (MetricKind,
// MetricCounters), exported as bpfchan_jetstream_<kind>_<counter>_total.
//
// nats.go runs goroutines of its own for a connection and its
// subscriptions; they belong to the connection, which the caller closes.
//
// # The retry policy
//
// Publisher (and Forward, which comes next) publish with async publishes
// and share one retry policy: a publish that fails, or that no PubAck
// answers within WithAckWait, is sent again with the same message (the same
// Nats-Msg-Id, so the stream's duplicate window drops a copy it already
// holds), after a pause that starts at the WithRetry minimum, doubles while
// failures go on and starts again after an acknowledgement; on a
// reconnection what waits is sent at once. It is given up only when ctx is
// cancelled or the error is permanent (the connection closed for good, a
// message the server refuses whatever happens); what was never acknowledged
// is then counted Dropped. Dropped means "never acknowledged", not "never
// stored": a message still in the connection's reconnect buffer may reach
// the stream later. Retries can change the order of messages in the stream.
// Publishes go through a JetStream context of the Publisher's own over the
// caller's connection, so its acknowledgements and timeouts neither see nor
// disturb the caller's async publishes.
//
// # Messages
//
// Every message carries the header HeaderNode (WithNode, default the host
// name). Forward's messages also carry HeaderRing (the ring's identity: the
// kernel's boot ID and the map's ID) and HeaderPos (the record's position in
// the ring), so any NATS client can check exactly-once delivery by
// (node, ring, Pos) without this package. The payload is T's binary
// encoding: for a fixed-size T (binary.Size(T) > 0) its bytes in native
// byte order, as the kernel lays the record out (so producers and consumers
// share a byte order; every common Linux fleet is little-endian); a T
// implementing encoding.BinaryMarshaler and BinaryUnmarshaler uses them; a
// []byte is the payload itself; WithEncoder and WithDecoder replace all of
// that. A packed message (HeaderCount set; HeaderPos is then its first
// record's position and HeaderLast its last record's) holds HeaderCount
// such encodings, each prefixed by its length as a little-endian uint32.
//
// # Consumer: at least once
//
// A Consumer delivers each record of each message as a *Msg[T] and the
// receiver acknowledges it with Msg.Ack (or Msg.AckSync, which waits for
// the server's confirmation). A message is acknowledged on the server once
// every record of it is; one that is not acknowledged within the
// consumer's AckWait is delivered again (Msg.Delivered counts). A record
// that does not decode is counted in Stats.DecodeErrors and the others of
// its message are delivered; a message none of whose records decodes (or
// whose headers do not parse) is terminated, so the server does not
// deliver it again.
//
// # Mirror
//
// A Mirror reads the bucket's snapshot first: every key put into the map,
// every map entry whose key the snapshot lacks deleted; then Synced() is
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
// notices a restarted server through missing heartbeats, which takes some
// seconds (about 20 in this module's tests). If the watch ends instead, the
// Mirror watches again from its last applied revision. Hazards: an entry
// the bucket drops by its MaxAge leaves no delete marker unless the bucket
// asks for them (LimitMarkerTTL), so the Mirror cannot see it go; delete
// markers purged (PurgeDeletes) while the Mirror is away are missed too.
//
// # What "exactly once" will cover
//
// Forward (the next part of this package) publishes a durable ring's
// records with message IDs made of (node, ring, Pos) and acknowledges the
// ring only once the stream has acknowledged them. It will cover:
//
//   - a crash of the agent at any moment (SIGKILL included): what the ring
//     delivered but the stream did not acknowledge stays in the ring and is
//     published again by the next run, and the stream's duplicate window
//     drops what it already holds;
//   - a restart later than the duplicate window, when the subject is the
//     node's own ("<prefix>.<node>"): Forward reads the last message the
//     stream holds on it and skips redelivered records at or below its Pos;
//   - not a crash of the server's machine with an R1 stream: a PubAck means
//     the server has the message, not that it is on disk (JetStream syncs
//     its file store every 2 minutes by default), so an R1 stream can lose
//     acknowledged messages when its machine crashes. Against that, use
//     replicas (R3) or sync "always" (which costs most of the throughput).
//
// A Publisher alone gives at-least-once publication with deduplication of
// its own retries inside the stream's duplicate window.
package jetstream
