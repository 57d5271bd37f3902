package jetstream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"
)

// resumeSpan bounds, in bytes of ring positions, how far a Forwarder
// publishes beyond the oldest record the stream has not acknowledged: a
// record at Pos is published only once every record below Pos-resumeSpan
// is acknowledged. It is what bounds the read at the start (storedRecords).
// A version that changes it must read at least the old span at its first
// start.
const resumeSpan = 1 << 20

// interval is the ring positions of the records one message holds: its
// HeaderPos and HeaderLast (HeaderPos again when it holds one record).
// The records a message holds are contiguous in the ring: every record
// the ring delivers between first and last is in it.
type interval struct{ first, last uint64 }

// stored is what the stream held of a ring when a Forwarder started: the
// intervals at or after the ring's acknowledged position, sorted and
// disjoint. covers is asked about increasing positions only.
type stored struct {
	iv []interval
	i  int
}

// holds reports whether every record from first to last is in the stream.
// Unlike covers, it may be asked in any order.
func (s *stored) holds(first, last uint64) bool {
	i, _ := slices.BinarySearchFunc(s.iv, first, func(v interval, pos uint64) int { return cmp.Compare(v.last, pos) })
	return i < len(s.iv) && s.iv[i].first <= first && last <= s.iv[i].last
}

// covers reports whether the record at pos is in the stream already.
func (s *stored) covers(pos uint64) bool {
	for s.i < len(s.iv) && s.iv[s.i].last < pos {
		s.i++
	}
	return s.i < len(s.iv) && s.iv[s.i].first <= pos
}

// storedRecords returns what the stream holds, on subject, of the records
// of node's ring at or after acked, the ring's acknowledged position: what
// a previous run published and did not live to acknowledge to the ring.
//
// It reads only the subject's tail. Every record the previous runs
// published was published while every record more than resumeSpan bytes
// below it was acknowledged, hence stored before it: so a record at or
// after acked can only come, in the stream, after the messages holding
// records below acked-resumeSpan (each record is stored once: the message
// IDs, and this very skip, see to that). A binary search over the stream's
// sequence finds such a message (or one of a previous ring of the node,
// which came before this ring's), and the read goes on from there to the
// subject's last message, headers only.
//
// It returns nothing when the subject's last message is not from this node
// and ring (nothing to skip, or the subject is not the node's alone) or
// when it meets a message of another node: on a shared subject the
// message IDs alone keep out duplicates, within the duplicate window.
func storedRecords(ctx context.Context, st js.Stream, subject, node, ring string, acked uint64) (stored, error) {
	last, err := st.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, js.ErrMsgNotFound) {
		return stored{}, nil
	}
	if err != nil {
		return stored{}, fmt.Errorf("get the last message on %q: %w", subject, err)
	}
	c := classifier{node: node, ring: ring, acked: acked}
	if k, _ := c.classify(last.Header); k != ofRing {
		return stored{}, nil
	}
	// The cached state may be older than the stream's first message (a
	// look during a run): a sequence below it is only a longer search.
	first := max(st.CachedInfo().State.FirstSeq, 1)
	lo, shared, err := tailStart(ctx, st, subject, c, first, last.Sequence)
	if err != nil || shared {
		return stored{}, err
	}
	iv, shared, err := readTail(ctx, st, subject, lo, last.Sequence, c)
	if err != nil || shared {
		return stored{}, err
	}
	return stored{iv: merge(iv)}, nil
}

// tailStart returns where, between the stream sequences lo and hi (the
// subject's last message), the read of the subject's tail starts: a
// message before which no record at or after c.acked can be (see
// storedRecords), found by a binary search, one message got per step; or
// shared when it meets another node's message.
func tailStart(ctx context.Context, st js.Stream, subject string, c classifier, lo, hi uint64) (start uint64, shared bool, err error) {
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		m, err := st.GetMsg(ctx, mid, js.WithGetMsgSubject(subject))
		if err != nil {
			return 0, false, fmt.Errorf("get the message on %q at or after %d: %w", subject, mid, err)
		}
		switch k, _ := c.classify(m.Header); k {
		case ofOtherNode:
			return 0, true, nil
		case before:
			lo = m.Sequence
		default:
			hi = mid - 1
		}
	}
	return lo, false, nil
}

// readTail reads the headers of the messages on subject from sequence lo
// to last and returns the intervals of the ring's records at or after
// c.acked, or shared when a message of another node is among them. It
// reads through an ephemeral pull consumer of its own, deleted at the end.
func readTail(ctx context.Context, st js.Stream, subject string, lo, last uint64, c classifier) (iv []interval, shared bool, err error) {
	cons, err := st.CreateConsumer(ctx, js.ConsumerConfig{
		FilterSubject:     subject,
		DeliverPolicy:     js.DeliverByStartSequencePolicy,
		OptStartSeq:       lo,
		AckPolicy:         js.AckNonePolicy,
		HeadersOnly:       true,
		InactiveThreshold: time.Minute, // if the delete below fails
	})
	if err != nil {
		return nil, false, fmt.Errorf("read %q from %d: %w", subject, lo, err)
	}
	defer func() { _ = st.DeleteConsumer(context.WithoutCancel(ctx), cons.CachedInfo().Name) }()
	for {
		b, err := cons.FetchNoWait(readBatch)
		if err != nil {
			return nil, false, fmt.Errorf("read %q from %d: %w", subject, lo, err)
		}
		n, done := 0, false
		for m := range b.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				return nil, false, fmt.Errorf("read %q from %d: %w", subject, lo, err)
			}
			switch k, in := c.classify(m.Headers()); k {
			case ofOtherNode:
				shared = true
			case ofRing:
				if in.last >= c.acked {
					iv = append(iv, in)
				}
			}
			// NumPending: limits may have removed the last message meanwhile.
			if meta.Sequence.Stream >= last || meta.NumPending == 0 {
				done = true // once the batch is drained
			}
		}
		if err := b.Error(); err != nil {
			return nil, false, fmt.Errorf("read %q from %d: %w", subject, lo, err)
		}
		if shared || done {
			return iv, shared, nil
		}
		if n == 0 {
			if err := context.Cause(ctx); err != nil {
				return nil, false, err
			}
			return nil, false, fmt.Errorf("read %q from %d: the stream sent no message before sequence %d", subject, lo, last)
		}
	}
}

// readBatch is how many messages readTail asks for at a time.
const readBatch = 1024

// merge sorts intervals and joins those that overlap.
func merge(iv []interval) []interval {
	slices.SortFunc(iv, func(a, b interval) int { return cmp.Compare(a.first, b.first) })
	out := iv[:0]
	for _, v := range iv {
		if n := len(out); n > 0 && v.first <= out[n-1].last {
			out[n-1].last = max(out[n-1].last, v.last)
			continue
		}
		out = append(out, v)
	}
	return out
}

// classifier tells the messages of a subject apart for storedRecords.
type classifier struct {
	node, ring string
	acked      uint64
}

// The kinds of message classify tells apart.
type kind uint8

const (
	ofOtherNode kind = iota // another node's, or no node's: the subject is shared
	before                  // a previous ring's of the node, or this ring's records all below acked-resumeSpan
	ofRing                  // this ring's, with a record at or after acked-resumeSpan
	unreadable              // this node's, with position headers that do not parse
)

// classify returns the kind of a message with headers h and, for this
// ring's, the positions of its records.
func (c classifier) classify(h nats.Header) (kind, interval) {
	if h.Get(HeaderNode) != c.node {
		return ofOtherNode, interval{}
	}
	if h.Get(HeaderRing) != c.ring {
		return before, interval{}
	}
	first, err := strconv.ParseUint(h.Get(HeaderPos), 10, 64)
	if err != nil {
		return unreadable, interval{}
	}
	last := first
	if h.Get(HeaderCount) != "" {
		if last, err = strconv.ParseUint(h.Get(HeaderLast), 10, 64); err != nil || last < first {
			return unreadable, interval{}
		}
	}
	if last < c.acked && c.acked-last > resumeSpan {
		return before, interval{}
	}
	return ofRing, interval{first, last}
}
