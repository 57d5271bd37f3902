package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	js "github.com/nats-io/nats.go/jetstream"

	bj "github.com/bpfchan/bpfchan/jetstream"
)

// collector consumes the fleet's stream and checks, per node, that every
// record of every ring is there exactly once, with no gap, in ring order.
// Its goroutine is owned by the collector: done is closed once the
// Consumer's channel is closed and its last record tallied.
type collector struct {
	k     *bj.Consumer[event]
	c     js.Consumer
	done  chan struct{}
	mu    sync.Mutex
	tally *tally
}

// startCollector starts consuming c, a pull consumer of the stream, for the
// nodes named.
func startCollector(ctx context.Context, c js.Consumer, nodes []string) (*collector, error) {
	k, err := bj.NewConsumer[event](ctx, c, bj.WithBuffer(1024))
	if err != nil {
		return nil, err
	}
	col := &collector{k: k, c: c, done: make(chan struct{}), tally: newTally(nodes)}
	go col.run()
	return col, nil
}

// run tallies and acknowledges each record until the Consumer stops.
func (c *collector) run() {
	defer close(c.done)
	for m := range c.k.C() {
		c.mu.Lock()
		c.tally.add(m.Node, m.Ring, m.Pos, m.Index, m.Seq, m.Delivered, &m.Value)
		c.mu.Unlock()
		// A lost ack makes the server deliver the message again: the
		// tally counts it as a redelivery, not as a duplicate.
		_ = m.Ack()
	}
}

// drainPoll is how often drain looks at the consumer's state.
const drainPoll = 20 * time.Millisecond

// drain returns once the collector has tallied and acknowledged every
// message of the stream up to sequence last.
func (c *collector) drain(ctx context.Context, last uint64) error {
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for {
		info, err := c.c.Info(ctx)
		if err != nil {
			return fmt.Errorf("collector: consumer info: %w", err)
		}
		if info.Delivered.Stream >= last && info.NumPending == 0 && info.NumAckPending == 0 {
			return nil
		}
		select {
		case <-tick.C:
		case <-c.k.Done():
			return fmt.Errorf("collector: the consumer stopped: %w", c.k.Wait())
		case <-ctx.Done():
			return fmt.Errorf("collector: %d messages delivered of %d, %d not acknowledged: %w",
				info.Delivered.Stream, last, info.NumAckPending, context.Cause(ctx))
		}
	}
}

// close stops the Consumer gracefully and waits until the collector has
// tallied what it delivered.
func (c *collector) close() error {
	err := c.k.Close()
	<-c.done
	return err
}

// snapshot returns a copy of the figures per node.
func (c *collector) snapshot() map[string]streamFigures {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tally.figures()
}

// tally is the collector's account of records, per node and ring.
type tally struct {
	nodes   map[string]*nodeTally
	foreign uint64 // records from nodes outside the fleet, or without headers
	seqs    seqSet // the messages delivered so far, by stream sequence
}

// nodeTally is one node's account.
type nodeTally struct {
	rings   map[string]*ringTally
	order   []string // ring IDs in the order first seen
	blocked uint64   // records of blocked commands (counted once each)
}

// ringTally is one ring's account: which records (by index, Pos /
// recordSize) were seen, and what came twice.
type ringTally struct {
	seen        bitset
	unique      uint64 // records seen
	next        uint64 // one past the highest index seen
	duplicates  uint64 // a record seen again in another message: in the stream twice
	redelivered uint64 // a record seen again in the same message, delivered again
	outOfOrder  uint64 // a record first seen after a later one of its ring
	misaligned  uint64 // a position that is not a record's
}

// maxRecords bounds a ring's record index the tally accepts (a 64-bit
// position space holds more than any ring of this demo will write).
const maxRecords = 1 << 34

func newTally(nodes []string) *tally {
	t := &tally{nodes: make(map[string]*nodeTally, len(nodes))}
	for _, n := range nodes {
		t.nodes[n] = &nodeTally{rings: make(map[string]*ringTally)}
	}
	return t
}

// add tallies one delivered record: the index-th record of a message with
// stream sequence seq, delivered for the delivered-th time, from ring of
// node, whose (first) record is at pos.
//
// A record is identified by (node, ring, position): in a packed message
// the index-th record is at pos + index*recordSize, since the probe writes
// every record it reserves (no record is discarded, all have one size). A
// record seen before is a redelivery when its message was delivered before
// (the same sequence, Delivered > 1), and a duplicate otherwise: a second
// message in the stream that holds it.
func (t *tally) add(node, ring string, pos uint64, index int, seq, delivered uint64, v *event) {
	nt := t.nodes[node]
	if nt == nil || ring == "" {
		t.foreign++
		return
	}
	rt := nt.rings[ring]
	if rt == nil {
		rt = &ringTally{}
		nt.rings[ring] = rt
		nt.order = append(nt.order, ring)
	}
	again := t.seqs.earlier(seq, delivered)
	if pos%recordSize != 0 {
		rt.misaligned++
		return
	}
	i := pos/recordSize + uint64(index)
	if i >= maxRecords {
		rt.misaligned++
		return
	}
	if rt.seen.set(i) {
		if again {
			rt.redelivered++
		} else {
			rt.duplicates++
		}
		return
	}
	rt.unique++
	if i+1 < rt.next {
		rt.outOfOrder++
	} else {
		rt.next = i + 1
	}
	if v.Flags&eventBlocked != 0 {
		nt.blocked++
	}
}

// streamFigures is what the collector found of one node in the stream.
type streamFigures struct {
	Records     uint64 `json:"records"`      // distinct records
	Blocked     uint64 `json:"blocked"`      // of those, from blocked commands
	Duplicates  uint64 `json:"duplicates"`   // records in the stream more than once
	Redelivered uint64 `json:"redelivered"`  // records delivered again (not duplicates)
	Gaps        uint64 `json:"gaps"`         // records missing below the highest one
	OutOfOrder  uint64 `json:"out_of_order"` // records that came after a later one of their ring
	Misaligned  uint64 `json:"misaligned"`   // positions that are no record's
	Rings       int    `json:"rings"`        // rings seen (one per node in a run)
}

func (t *tally) figures() map[string]streamFigures {
	out := make(map[string]streamFigures, len(t.nodes))
	for name, nt := range t.nodes {
		f := streamFigures{Blocked: nt.blocked, Rings: len(nt.order)}
		for _, id := range nt.order {
			rt := nt.rings[id]
			f.Records += rt.unique
			f.Duplicates += rt.duplicates
			f.Redelivered += rt.redelivered
			f.Gaps += rt.next - rt.unique
			f.OutOfOrder += rt.outOfOrder
			f.Misaligned += rt.misaligned
		}
		out[name] = f
	}
	return out
}

// bitset is a set of small integers.
type bitset []uint64

// set adds i and reports whether it was there already.
func (b *bitset) set(i uint64) bool {
	w, bit := i/64, uint64(1)<<(i%64)
	if w >= uint64(len(*b)) {
		*b = append(*b, make([]uint64, w+1-uint64(len(*b))+uint64(len(*b)/2))...)
	}
	was := (*b)[w]&bit != 0
	(*b)[w] |= bit
	return was
}

// seqSet records, for each message delivered, the delivery count with
// which the tally first saw it (Msg.Delivered), by stream sequence from the
// first message delivered.
type seqSet struct {
	base  uint64  // the first sequence delivered; 0: none yet
	first []uint8 // by seq - base; 0: never seen; saturates at 255
}

// earlier notes that the message with sequence seq came with delivery
// count delivered, and reports whether the tally had seen it in an earlier
// delivery: then its records seen before are redeliveries; otherwise they
// came in another message, and are duplicates.
func (s *seqSet) earlier(seq, delivered uint64) bool {
	if s.base == 0 {
		s.base = seq
	}
	if seq < s.base {
		return delivered > 1 // older than the first message seen: trust the count
	}
	i := seq - s.base
	if i >= uint64(len(s.first)) {
		s.first = append(s.first, make([]uint8, i+1-uint64(len(s.first))+uint64(len(s.first)/2))...)
	}
	d := uint8(min(delivered, 255))
	if s.first[i] == 0 {
		s.first[i] = d
	}
	return d > s.first[i]
}
