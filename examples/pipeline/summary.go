package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// pumpFigures is a pump's account of its records (the fields of pump.Stats
// the summary shows). Once the pump has stopped:
// Received == Delivered + Dropped + DecodeErrors.
type pumpFigures struct {
	Received     uint64 `json:"received"`
	Delivered    uint64 `json:"delivered"`
	Dropped      uint64 `json:"dropped"`
	DecodeErrors uint64 `json:"decode_errors"`
}

// flowFigures is what the flow's pumps report.
type flowFigures struct {
	Ring  pumpFigures // ring buffer -> batches of events
	Sink  pumpFigures // important events -> BPF queue
	Queue pumpFigures // BPF queue -> worker
}

// kernelFigures is what the BPF maps say once the program is detached.
type kernelFigures struct {
	Syscalls  uint64 `json:"syscalls"`          // runs of the program (syscalls traced) before it stopped
	InCounts  uint64 `json:"in_counts"`         // the sum of the per-syscall counts
	Written   uint64 `json:"written"`           // events written into the ring buffer
	RingFull  uint64 `json:"dropped_ring_full"` // events not written: the ring buffer was full
	Uncounted uint64 `json:"uncounted"`         // events written but not counted: counts map full
	Counted   uint64 `json:"counted"`           // the counter the count stage adds to
	QueueLeft uint64 `json:"queue_left"`        // values still in the BPF queue (should be 0)
}

// drop is a count of events lost, and why.
type drop struct {
	Count  uint64 `json:"count"`
	Reason string `json:"reason"`
}

// summary is the final report.
type summary struct {
	Seconds   float64        `json:"seconds"`
	Important []string       `json:"important_syscalls"`
	Kernel    kernelFigures  `json:"kernel"`
	Ring      pumpFigures    `json:"ring_pump"`
	Received  uint64         `json:"received"`
	Counted   uint64         `json:"counted"`
	Adds      uint64         `json:"counter_adds"` // one kernel-atomic add per batch
	Matched   uint64         `json:"important"`
	Sink      pumpFigures    `json:"queue_writer"`
	Enqueued  uint64         `json:"enqueued"`
	Queue     pumpFigures    `json:"queue_reader"`
	Worked    uint64         `json:"worked"`
	Dropped   []drop         `json:"dropped"`
	Top       []syscallCount `json:"top"`
	// Problems lists every equation that does not hold; empty when the
	// figures reconcile.
	Problems   []string `json:"problems"`
	Reconciled bool     `json:"reconciled"`
}

func newSummary(elapsed time.Duration, cfg config, k kernelFigures, f flowFigures, t *tally, top []syscallCount) *summary {
	s := &summary{
		Seconds:   elapsed.Seconds(),
		Important: strings.Split(cfg.names, ","),
		Kernel:    k,
		Ring:      f.Ring,
		Received:  t.received.Load(),
		Counted:   k.Counted,
		Adds:      t.adds.Load(),
		Matched:   t.important.Load(),
		Sink:      f.Sink,
		Enqueued:  f.Sink.Delivered,
		Queue:     f.Queue,
		Worked:    t.worked.Load(),
		Top:       top,
		Dropped:   []drop{},
		Problems:  []string{},
	}
	for _, d := range []drop{
		{k.RingFull, "kernel: ring buffer full"},
		{k.Uncounted, "kernel: per-syscall counts map full (event kept, not counted)"},
		{f.Ring.Dropped, "ring pump: overflow policy"},
		{f.Ring.DecodeErrors, "ring pump: record of the wrong size"},
		{f.Sink.Dropped, "queue writer: BPF queue full"},
		{f.Sink.DecodeErrors, "queue writer: encode error"},
		{f.Queue.Dropped, "queue reader: overflow policy"},
		{f.Queue.DecodeErrors, "queue reader: decode error"},
	} {
		if d.Count > 0 {
			s.Dropped = append(s.Dropped, d)
		}
	}
	check := func(ok bool, format string, args ...any) {
		if !ok {
			s.Problems = append(s.Problems, fmt.Sprintf(format, args...))
		}
	}
	r, q, w := f.Ring, f.Queue, f.Sink
	check(k.InCounts+k.Uncounted == k.Syscalls, "kernel: counted %d + uncounted %d != %d runs", k.InCounts, k.Uncounted, k.Syscalls)
	check(k.Written == r.Received, "kernel wrote %d events, the ring pump received %d", k.Written, r.Received)
	check(r.Received == r.Delivered+r.Dropped+r.DecodeErrors, "ring pump: received %d != delivered %d + dropped %d + decode errors %d", r.Received, r.Delivered, r.Dropped, r.DecodeErrors)
	check(r.Delivered == s.Received, "ring pump delivered %d events, the count stage received %d", r.Delivered, s.Received)
	check(s.Received == s.Counted, "received %d events, counted %d", s.Received, s.Counted)
	check(s.Matched == w.Received, "the filter kept %d events, the queue writer received %d", s.Matched, w.Received)
	check(w.Received == w.Delivered+w.Dropped+w.DecodeErrors, "queue writer: received %d != enqueued %d + dropped %d + encode errors %d", w.Received, w.Delivered, w.Dropped, w.DecodeErrors)
	check(w.Delivered == q.Received+k.QueueLeft, "enqueued %d, dequeued %d, %d left in the queue", w.Delivered, q.Received, k.QueueLeft)
	check(q.Received == q.Delivered+q.Dropped+q.DecodeErrors, "queue reader: received %d != delivered %d + dropped %d + decode errors %d", q.Received, q.Delivered, q.Dropped, q.DecodeErrors)
	check(q.Delivered == s.Worked, "queue reader delivered %d, the worker took %d", q.Delivered, s.Worked)
	s.Reconciled = len(s.Problems) == 0
	return s
}

func (s *summary) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

func (s *summary) writeText(w io.Writer) error {
	var b strings.Builder
	k := s.Kernel
	fmt.Fprintf(&b, "\nsummary after %.1fs (important: %s)\n", s.Seconds, strings.Join(s.Important, ","))
	fmt.Fprintf(&b, "  kernel     %s syscalls traced = %s in counts + %s uncounted\n",
		num(k.Syscalls), num(k.InCounts), num(k.Uncounted))
	fmt.Fprintf(&b, "             = %s written to the ring buffer + %s ring full\n", num(k.Written), num(k.RingFull))
	fmt.Fprintf(&b, "  ring pump  received %s = delivered %s + dropped %s + malformed %s\n",
		num(s.Ring.Received), num(s.Ring.Delivered), num(s.Ring.Dropped), num(s.Ring.DecodeErrors))
	fmt.Fprintf(&b, "  count      received %s = counted %s (%s kernel-atomic adds)\n", num(s.Received), num(s.Counted), num(s.Adds))
	fmt.Fprintf(&b, "  important  %s = enqueued %s = worked %s (left in the queue: %s)\n",
		num(s.Matched), num(s.Enqueued), num(s.Worked), num(k.QueueLeft))
	if len(s.Dropped) == 0 {
		fmt.Fprintf(&b, "  dropped    none\n")
	}
	for _, d := range s.Dropped {
		fmt.Fprintf(&b, "  dropped    %s (%s)\n", num(d.Count), d.Reason)
	}
	for i := 0; i < len(s.Top); i += 5 {
		parts := make([]string, 0, 5)
		for _, c := range s.Top[i:min(i+5, len(s.Top))] {
			parts = append(parts, c.Name+" "+num(c.Count))
		}
		label := "top"
		if i > 0 {
			label = ""
		}
		fmt.Fprintf(&b, "  %-10s %s\n", label, strings.Join(parts, ", "))
	}
	if s.Reconciled {
		fmt.Fprintf(&b, "  the figures reconcile: nothing was lost unaccounted\n")
	} else {
		fmt.Fprintf(&b, "  THE FIGURES DO NOT RECONCILE:\n")
		for _, p := range s.Problems {
			fmt.Fprintf(&b, "    %s\n", p)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// num formats n with thousands separators.
func num(n uint64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
