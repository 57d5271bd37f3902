package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// nodeSummary is one node's final account.
type nodeSummary struct {
	Node   string        `json:"node"`
	Kernel kernelFigures `json:"kernel"` // the probe's counters, final
	Stream streamFigures `json:"stream"` // what the collector found in the stream
	// Restarts counts the agent's restarts after a SIGKILL (-crash), and
	// DownSeconds how long it was down in all.
	Restarts    int     `json:"restarts"`
	DownSeconds float64 `json:"down_seconds"`
	// Forward is the last agent's Forwarder's counters, as its
	// MetricCounters names them (after a restart, "skipped" counts the
	// records a killed agent had published without acknowledging them to
	// the ring).
	Forward map[string]uint64 `json:"forward"`
	// Mirror is the last agent's Mirror of the blocked bucket, the same way.
	Mirror  map[string]uint64 `json:"mirror"`
	Stopped bool              `json:"stopped_cleanly"`
	// Problems lists every check of this node that failed.
	Problems []string `json:"problems"`
}

// summary is the final report of a run.
type summary struct {
	Seconds  float64       `json:"seconds"`
	Nodes    []nodeSummary `json:"nodes"`
	Stream   string        `json:"stream"`
	Messages uint64        `json:"stream_messages"` // messages the run added to the stream
	Foreign  uint64        `json:"foreign_records"` // records of other publishers on events.>
	Blocked  string        `json:"blocked_name,omitempty"`
	LoadRuns uint64        `json:"load_commands"`
	// Problems lists what went wrong outside a node's checks.
	Problems   []string `json:"problems"`
	Reconciled bool     `json:"reconciled"`
}

// check fills in s.Problems for each node and the run, and s.Reconciled.
// Per node: the kernel's events = the records in the stream, once each,
// with no gap + those the ring had no room for; the same for the events of
// blocked commands; one ring; the agent stopped cleanly (the counters are
// final, nothing is in flight).
func (s *summary) check() {
	s.Reconciled = len(s.Problems) == 0
	for i := range s.Nodes {
		n := &s.Nodes[i]
		k, st := n.Kernel, n.Stream
		var p []string
		add := func(ok bool, format string, args ...any) {
			if !ok {
				p = append(p, fmt.Sprintf(format, args...))
			}
		}
		add(n.Stopped, "the agent did not stop cleanly: the figures may not be final")
		add(k.Events == st.Records+k.RingFull, "written by the kernel %d != in the stream %d + ring full %d", k.Events, st.Records, k.RingFull)
		add(k.Blocked == st.Blocked+k.BlockedFull, "blocked: written by the kernel %d != in the stream %d + ring full %d", k.Blocked, st.Blocked, k.BlockedFull)
		add(st.Duplicates == 0, "%d records in the stream twice", st.Duplicates)
		add(st.Gaps == 0, "%d records missing between others", st.Gaps)
		add(st.Misaligned == 0, "%d records at positions that are no record's", st.Misaligned)
		add(st.Rings <= 1, "records from %d rings, want one", st.Rings)
		n.Problems = append(n.Problems, p...)
		if len(n.Problems) > 0 {
			s.Reconciled = false
		}
		if n.Problems == nil {
			n.Problems = []string{}
		}
	}
	if s.Problems == nil {
		s.Problems = []string{}
	}
}

func (s *summary) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

func (s *summary) writeText(w io.Writer) error {
	var b strings.Builder
	crashes := 0
	for _, n := range s.Nodes {
		crashes += n.Restarts
	}
	fmt.Fprintf(&b, "\nsummary after %s: %d nodes, %d killed and restarted, %s messages in stream %s, %s load commands\n",
		seconds(s.Seconds), len(s.Nodes), crashes, num(s.Messages), s.Stream, num(s.LoadRuns))
	for _, n := range s.Nodes {
		k, st := n.Kernel, n.Stream
		fmt.Fprintf(&b, "  %-8s written by the kernel %s = in the stream %s (exactly once) + ring full %s\n",
			n.Node, num(k.Events), num(st.Records), num(k.RingFull))
		if s.Blocked != "" {
			fmt.Fprintf(&b, "  %-8s blocked (%s) %s = in the stream %s + ring full %s\n",
				"", s.Blocked, num(k.Blocked), num(st.Blocked), num(k.BlockedFull))
		}
		order := "in ring order"
		if st.OutOfOrder > 0 {
			order = fmt.Sprintf("%s out of ring order (publishes retried)", num(st.OutOfOrder))
		}
		fmt.Fprintf(&b, "  %-8s %s, %s redelivered to the collector\n", "", order, num(st.Redelivered))
		if n.Restarts > 0 {
			fmt.Fprintf(&b, "  %-8s killed (SIGKILL) and restarted %s, down %s in all; %s records a killed agent had published were skipped\n",
				"", times(n.Restarts), seconds(n.DownSeconds), num(n.Forward["skipped"]))
		}
		for _, p := range n.Problems {
			fmt.Fprintf(&b, "  %-8s PROBLEM: %s\n", "", p)
		}
	}
	if s.Foreign > 0 {
		fmt.Fprintf(&b, "  %s records from publishers outside this fleet, ignored\n", num(s.Foreign))
	}
	for _, p := range s.Problems {
		fmt.Fprintf(&b, "  PROBLEM: %s\n", p)
	}
	if s.Reconciled {
		b.WriteString("  the figures reconcile: every event the kernel wrote is in the stream exactly once\n")
	} else {
		b.WriteString("  THE FIGURES DO NOT RECONCILE\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// times says n times in words.
func times(n int) string {
	switch n {
	case 1:
		return "once"
	case 2:
		return "twice"
	}
	return fmt.Sprintf("%d times", n)
}

// seconds formats a duration given in seconds.
func seconds(s float64) string {
	return (time.Duration(s*10) * time.Second / 10).String()
}

// num formats n with thousands separators.
func num(n uint64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
