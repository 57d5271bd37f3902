package main

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/bpfchan/bpfchan/pump"
)

// figures are the final counts of every stage.
type figures struct {
	Elapsed            time.Duration
	Produced, RingFull uint64     // BPF producer runs; runs whose record did not fit in the ring
	Ring               pump.Stats // the ring-buffer pump
	Parsed, Filtered   uint64     // stage 1: events categorized; events discarded by the filter
	Q1w, Q1            pump.Stats // queue 1's writer and source
	Enriched           []uint64   // stage 2: per worker
	Q2w, Q2            pump.Stats // queue 2's writer and source
	Aggregated         uint64     // stage 3
	Stats              map[string]uint64
}

func (f *flow) figures(elapsed time.Duration) (figures, error) {
	attempted, lost, err := f.l.prod.Counts()
	if err != nil {
		return figures{}, err
	}
	stats, err := f.l.counters()
	if err != nil {
		return figures{}, err
	}
	return figures{
		Elapsed: elapsed, Produced: attempted, RingFull: lost, Ring: f.ring.Stats(),
		Parsed: f.parsed.Load(), Filtered: f.filtered.Load(),
		Q1w: f.q1w.Stats(), Q1: f.q1.Stats(), Enriched: f.workerCounts(),
		Q2w: f.q2w.Stats(), Q2: f.q2.Stats(), Aggregated: f.aggregated.Load(), Stats: stats,
	}, nil
}

// Dropped is every event lost on the way, whatever the reason.
func (fg figures) Dropped() uint64 {
	return fg.RingFull + fg.Ring.Dropped + fg.Ring.DecodeErrors +
		fg.Q1w.Dropped + fg.Q1w.DecodeErrors + fg.Q1.Dropped + fg.Q1.DecodeErrors +
		fg.Q2w.Dropped + fg.Q2w.DecodeErrors + fg.Q2.Dropped + fg.Q2.DecodeErrors
}

// problems lists every equation between the stages that does not hold.
func (fg figures) problems() []string {
	var p []string
	eq := func(what string, a, b uint64) {
		if a != b {
			p = append(p, fmt.Sprintf("%s: %d != %d", what, a, b))
		}
	}
	var enriched, categories uint64
	for _, n := range fg.Enriched {
		enriched += n
	}
	for _, n := range statNames[:4] {
		categories += fg.Stats[n]
	}
	eq("produced = ring full + taken from the ring", fg.Produced, fg.RingFull+fg.Ring.Received)
	eq("taken from the ring = categorized + ring drops", fg.Ring.Received, fg.Parsed+fg.Ring.Dropped+fg.Ring.DecodeErrors)
	eq("categorized = filtered + sent to queue 1", fg.Parsed, fg.Filtered+fg.Q1w.Received)
	eq("sent to queue 1 = pushed + dropped (full)", fg.Q1w.Received, fg.Q1w.Delivered+fg.Q1w.Dropped+fg.Q1w.DecodeErrors)
	eq("pushed into queue 1 = popped from it", fg.Q1w.Delivered, fg.Q1.Received)
	eq("popped from queue 1 = enriched + drops", fg.Q1.Received, enriched+fg.Q1.Dropped+fg.Q1.DecodeErrors)
	eq("enriched = sent to queue 2", enriched, fg.Q2w.Received)
	eq("sent to queue 2 = pushed + dropped (full)", fg.Q2w.Received, fg.Q2w.Delivered+fg.Q2w.Dropped+fg.Q2w.DecodeErrors)
	eq("pushed into queue 2 = popped from it", fg.Q2w.Delivered, fg.Q2.Received)
	eq("popped from queue 2 = aggregated + drops", fg.Q2.Received, fg.Aggregated+fg.Q2.Dropped+fg.Q2.DecodeErrors)
	eq("aggregated = the stats map's total", fg.Aggregated, fg.Stats["total"])
	eq("the stats map's total = the sum of its categories", fg.Stats["total"], categories)
	eq("produced = aggregated + filtered + dropped", fg.Produced, fg.Aggregated+fg.Filtered+fg.Dropped())
	if len(fg.Enriched) > 0 && slices.Max(fg.Enriched)-slices.Min(fg.Enriched) > 1 {
		p = append(p, fmt.Sprintf("round-robin: the workers enriched %v, more than one apart", fg.Enriched))
	}
	return p
}

// write prints the summary and reports whether the figures reconcile.
func (fg figures) write(out io.Writer) bool {
	var s []byte
	s = fmt.Appendf(s, "\n=== Pipeline Statistics after %.1fs ===\n", fg.Elapsed.Seconds())
	s = fmt.Appendf(s, "BPF producer:    %d events produced, %d lost (ring buffer full)\n", fg.Produced, fg.RingFull)
	s = fmt.Appendf(s, "Stage 1 filter:  %d processed, %d filtered, %d sent to queue 1 (pushed %d, dropped %d: queue full)\n",
		fg.Parsed, fg.Filtered, fg.Q1w.Received, fg.Q1w.Delivered, fg.Q1w.Dropped)
	s = fmt.Appendf(s, "Stage 2 enrich:  %d popped from queue 1, enriched by the workers %v, sent to queue 2 (pushed %d, dropped %d: queue full)\n",
		fg.Q1.Delivered, fg.Enriched, fg.Q2w.Delivered, fg.Q2w.Dropped)
	s = fmt.Appendf(s, "Stage 3 aggr.:   %d popped from queue 2, %d aggregated\n", fg.Q2.Delivered, fg.Aggregated)
	s = fmt.Appendf(s, "Stats map:      ")
	for _, n := range statNames {
		s = fmt.Appendf(s, " %s=%d", n, fg.Stats[n])
	}
	s = fmt.Appendf(s, "\nproduced %d = aggregated %d + filtered %d + dropped %d (ring full %d, queue 1 full %d, queue 2 full %d, other %d)\n",
		fg.Produced, fg.Aggregated, fg.Filtered, fg.Dropped(), fg.RingFull, fg.Q1w.Dropped, fg.Q2w.Dropped,
		fg.Dropped()-fg.RingFull-fg.Q1w.Dropped-fg.Q2w.Dropped)
	problems := fg.problems()
	if len(problems) == 0 {
		s = fmt.Appendf(s, "the figures reconcile\n")
	}
	for _, p := range problems {
		s = fmt.Appendf(s, "DOES NOT RECONCILE: %s\n", p)
	}
	out.Write(s)
	return len(problems) == 0
}
