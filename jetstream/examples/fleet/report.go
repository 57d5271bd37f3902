package main

import (
	"strings"

	"github.com/bpfchan/bpfchan/pump"

	bj "github.com/bpfchan/bpfchan/jetstream"
)

// An agent reports to the parent on its stdout, one JSON object per line:
// "up" once (its probe checked, its Forwarder and Mirror running), "stats"
// every report interval, and "final" once it has stopped.
const (
	reportUp    = "up"
	reportStats = "stats"
	reportFinal = "final"
)

// report is one line of an agent's stdout.
type report struct {
	Kind  string      `json:"kind"`
	Up    *upReport   `json:"up,omitempty"`
	Stats *agentStats `json:"stats,omitempty"`
	// Error is set on the final report when the stop did not go cleanly.
	Error string `json:"error,omitempty"`
}

// upReport is what an agent found when it started.
type upReport struct {
	attachInfo
	RingID string `json:"ring_id"` // the ring's identity: the kernel's boot ID and the map's ID
	// Writing says how the probe was seen writing into the ring before the
	// agent reported itself up: "ring" (the producer position moved) or
	// "ring full" (the ring was full and the probe counted it).
	Writing string  `json:"writing"`
	Seconds float64 `json:"startup_seconds"` // from the agent's start to up
}

// agentStats are an agent's handles' figures.
type agentStats struct {
	Ring     pump.Stats `json:"ring"`         // the ring's AckSource
	AckedPos uint64     `json:"acked_pos"`    // the ring's published consumer position
	Produced uint64     `json:"produced_pos"` // the ring's producer position
	Forward  bj.Stats   `json:"forward"`
	Mirror   bj.Stats   `json:"mirror"`
	// ForwardCounters and MirrorCounters are what the handles'
	// MetricCounters emit, which the parent's metrics serve.
	ForwardCounters []counter `json:"forward_counters"`
	MirrorCounters  []counter `json:"mirror_counters"`
	// Passed is set on the final report: the probe runs that got through
	// its gate before the agent closed it.
	Passed uint64 `json:"passed,omitempty"`
}

// counter is one counter a metrics.Handle emits.
type counter struct {
	Name  string `json:"name"`
	Value uint64 `json:"value"`
}

// countersOf collects what h's MetricCounters emits.
func countersOf(h interface {
	MetricCounters(func(string, uint64))
}) []counter {
	var cs []counter
	h.MetricCounters(func(name string, v uint64) { cs = append(cs, counter{name, v}) })
	return cs
}

// counterMap maps each counter's name to its value.
func counterMap(cs []counter) map[string]uint64 {
	m := make(map[string]uint64, len(cs))
	for _, c := range cs {
		m[c.Name] = c.Value
	}
	return m
}

// joinErrors joins the errors that are not nil into one, on one line
// (errors.Join puts each on a line of its own); nil when all are nil, a
// lone error as it is.
func joinErrors(errs ...error) error {
	var le lineErrors
	for _, err := range errs {
		if err != nil {
			le = append(le, err)
		}
	}
	switch len(le) {
	case 0:
		return nil
	case 1:
		return le[0]
	}
	return le
}

// lineErrors is several errors, read as one line.
type lineErrors []error

func (le lineErrors) Error() string {
	msgs := make([]string, len(le))
	for i, err := range le {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (le lineErrors) Unwrap() []error { return le }
