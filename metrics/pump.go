package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"sync"

	"github.com/bpfchan/bpfchan/pump"
)

// pumpCounters are the counters of every pump, in pump.Stats order.
var pumpCounters = []stat[pump.Stats]{
	{pumpDesc("received_total", "Records a source took out of the kernel, or values a sink took from its channel."),
		func(s *pump.Stats) uint64 { return s.Received }},
	{pumpDesc("delivered_total", "Records a source sent on its channel, or values a sink pushed into the kernel."),
		func(s *pump.Stats) uint64 { return s.Delivered }},
	{pumpDesc("dropped_total", "Records or values dropped by an overflow or full policy, or abandoned by an abort."),
		func(s *pump.Stats) uint64 { return s.Dropped }},
	{pumpDesc("decode_errors_total", "Records that failed to decode, or values that failed to encode."),
		func(s *pump.Stats) uint64 { return s.DecodeErrors }},
	{pumpDesc("lost_samples_total", "Perf samples the kernel reported lost (perf pumps only)."),
		func(s *pump.Stats) uint64 { return s.LostSamples }},
	{pumpDesc("overwritten_total", "Older values a sink with FullOverwrite evicted from its full map."),
		func(s *pump.Stats) uint64 { return s.Overwritten }},
	{pumpDesc("polls_total", "Pops and pushes a queue or stack pump attempted, and the shared waiting goroutine's peeks at its idle map."),
		func(s *pump.Stats) uint64 { return s.Polls }},
	{pumpDesc("empty_polls_total", "Polls (pops or peeks) that found the queue or stack empty."),
		func(s *pump.Stats) uint64 { return s.EmptyPolls }},
	{pumpDesc("full_retries_total", "Pushes repeated, or waits for room, because the map (a queue, a stack, a user ring buffer) was full."),
		func(s *pump.Stats) uint64 { return s.FullRetries }},
	{pumpDesc("acked_total", "Delivered records of a durable ring (RingBufAcked) released to the kernel by Ack."),
		func(s *pump.Stats) uint64 { return s.Acked }},
}

var unackedBytes = pumpDesc("unacked_bytes", "Bytes committed to a durable ring (RingBufAcked) and not yet acknowledged: how far its consumer lags.")

func pumpDesc(name, help string) *prometheus.Desc { return newDesc("pump", name, help, "pump") }

// pumpEntry exports a pump's Stats, read with atomic loads: the pump takes
// no lock for them, and never waits for a scrape.
//
// A pump's Stats may go down: what a source had sent on C() and takes back
// (a DropOldest eviction, an abort; an acked source's Close) leaves
// Delivered (an acked source's Received too), so that Delivered is exactly
// what receivers got. A Prometheus counter must never go down (a decrease
// reads as a reset, and increase() would count the whole counter again), so
// each counter is exported as the highest value it has had: delivered_total
// then includes values a stop took back, which dropped_total counts too.
type pumpEntry struct {
	h   pumpHandle
	ack ackHandle // a RingBufAcked source; nil for other pumps

	mu   sync.Mutex
	high pump.Stats // the highest value of each counter exported so far
}

func (e *pumpEntry) collect(name string, ch chan<- prometheus.Metric) {
	s := e.h.Stats()
	e.mu.Lock()
	s = highest(s, e.high)
	e.high = s
	e.mu.Unlock()
	counters(ch, pumpCounters, &s, name)
	if e.ack != nil {
		acked, produced := e.ack.Positions()
		gauge(ch, unackedBytes, float64(produced-min(acked, produced)), name)
	}
}

// highest is a and b field by field, the higher of each.
func highest(a, b pump.Stats) pump.Stats {
	return pump.Stats{
		Received:     max(a.Received, b.Received),
		Delivered:    max(a.Delivered, b.Delivered),
		Dropped:      max(a.Dropped, b.Dropped),
		DecodeErrors: max(a.DecodeErrors, b.DecodeErrors),
		LostSamples:  max(a.LostSamples, b.LostSamples),
		Overwritten:  max(a.Overwritten, b.Overwritten),
		Polls:        max(a.Polls, b.Polls),
		EmptyPolls:   max(a.EmptyPolls, b.EmptyPolls),
		FullRetries:  max(a.FullRetries, b.FullRetries),
		Acked:        max(a.Acked, b.Acked),
	}
}
