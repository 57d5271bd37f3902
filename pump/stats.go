package pump

import "sync/atomic"

// Stats counts what a pump did. Once a pump has stopped,
// Received == Delivered + Dropped + DecodeErrors.
type Stats struct {
	Received     uint64 // records or values taken out of the kernel (sources) / from C() (sinks)
	Delivered    uint64 // sent on C() (sources) / pushed into the kernel (sinks)
	Dropped      uint64 // dropped by an overflow or full policy, or in hand when ctx was cancelled
	DecodeErrors uint64 // records that failed to decode / values that failed to encode
	LostSamples  uint64 // perf only: reported lost by the kernel, which reports a loss with the CPU's next sample (see Perf)
	Overwritten  uint64 // sinks with FullOverwrite: older values evicted
	Polls        uint64 // queue/stack pops and pushes attempted, and the waiting goroutine's peeks at an idle queue
	EmptyPolls   uint64 // polls (pops or peeks) that found the map empty
	FullRetries  uint64 // pushes repeated because the map was full
	Acked        uint64 // RingBufAcked: delivered records released to the kernel by Ack
}

// counters is the pump goroutine's private tally, published to readers of
// Stats whenever the pump is about to block and when it stops, so the hot
// path pays no atomic operation per record.
type counters struct {
	n   Stats
	pub [9]atomic.Uint64
}

func (c *counters) publish() {
	c.pub[0].Store(c.n.Received)
	c.pub[1].Store(c.n.Delivered)
	c.pub[2].Store(c.n.Dropped)
	c.pub[3].Store(c.n.DecodeErrors)
	c.pub[4].Store(c.n.LostSamples)
	c.pub[5].Store(c.n.Overwritten)
	c.pub[6].Store(c.n.Polls)
	c.pub[7].Store(c.n.EmptyPolls)
	c.pub[8].Store(c.n.FullRetries)
}

func (c *counters) load() Stats {
	return Stats{
		Received:     c.pub[0].Load(),
		Delivered:    c.pub[1].Load(),
		Dropped:      c.pub[2].Load(),
		DecodeErrors: c.pub[3].Load(),
		LostSamples:  c.pub[4].Load(),
		Overwritten:  c.pub[5].Load(),
		Polls:        c.pub[6].Load(),
		EmptyPolls:   c.pub[7].Load(),
		FullRetries:  c.pub[8].Load(),
	}
}

func (s Stats) add(o Stats) Stats {
	return Stats{
		Received:     s.Received + o.Received,
		Delivered:    s.Delivered + o.Delivered,
		Dropped:      s.Dropped + o.Dropped,
		DecodeErrors: s.DecodeErrors + o.DecodeErrors,
		LostSamples:  s.LostSamples + o.LostSamples,
		Overwritten:  s.Overwritten + o.Overwritten,
		Polls:        s.Polls + o.Polls,
		EmptyPolls:   s.EmptyPolls + o.EmptyPolls,
		FullRetries:  s.FullRetries + o.FullRetries,
		Acked:        s.Acked + o.Acked,
	}
}
