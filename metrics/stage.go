package metrics

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bpfchan/bpfchan/pipeline"
)

var (
	stageIn      = stageDesc("in_total", "Values a pipeline stage received from its inputs.")
	stageOut     = stageDesc("out_total", "Values (Batch: batches) a stage passed on, summed over its outputs.")
	stageDropped = stageDesc("dropped_total", "Values (Batch: batches) a stage dropped by its Overflow policy, summed over its outputs.")
	stageErrors  = stageDesc("errors_total", "Callbacks of the stage that returned an error (To: its Sender failed); the first one stops the Group.")
	stageBusy    = stageDesc("busy_seconds_total", "Time spent in the stage's callbacks, summed over its workers (sampled while callbacks are short).")
	stageWorkers = stageDesc("workers", "Workers running the stage's callback.")
	stageBuf     = stageDesc("buffered", "Values waiting in the stage's output buffers.")

	branchOut     = stageDesc("branch_out_total", "Values one output of a Tee or Shard passed on.", "branch")
	branchDropped = stageDesc("branch_dropped_total", "Values one output of a Tee or Shard dropped by its Overflow policy.", "branch")
)

func stageDesc(name, help string, labels ...string) *prometheus.Desc {
	return newDesc("stage", name, help, append([]string{"group", "stage"}, labels...)...)
}

// stageBuffered returns the values in a stage's output buffers.
func stageBuffered(st *pipeline.StageStats) (int, bool) { return st.Buffered, true }

// groupEntry exports a Group's stages. Reading their Stats loads atomics
// (the Group's lock is taken only to list the stages); the stages never
// wait for a scrape.
type groupEntry struct {
	h groupHandle

	mu   sync.Mutex
	busy map[string]time.Duration // the highest Busy exported per stage
}

func (e *groupEntry) collect(group string, ch chan<- prometheus.Metric) {
	stats := e.h.Stats()
	names := stageLabels(stats)
	busy := make([]time.Duration, len(stats))
	e.mu.Lock()
	if e.busy == nil {
		e.busy = make(map[string]time.Duration, len(stats))
	}
	for i := range stats {
		// Busy may read a little lower than a moment before (the time so
		// far of a callback that has just ended, not yet added to the
		// total); a counter never goes down.
		busy[i] = max(stats[i].Busy, e.busy[names[i]])
		e.busy[names[i]] = busy[i]
	}
	e.mu.Unlock()
	for i := range stats {
		st, stage := &stats[i], names[i]
		counter(ch, stageIn, float64(st.In), group, stage)
		counter(ch, stageOut, float64(st.Out), group, stage)
		counter(ch, stageDropped, float64(st.Dropped), group, stage)
		counter(ch, stageErrors, float64(st.Errors), group, stage)
		counter(ch, stageBusy, busy[i].Seconds(), group, stage)
		gauge(ch, stageWorkers, float64(st.Workers), group, stage)
		if n, ok := stageBuffered(st); ok {
			gauge(ch, stageBuf, float64(n), group, stage)
		}
		for b, br := range st.Branches {
			branch := strconv.Itoa(b)
			counter(ch, branchOut, float64(br.Out), group, stage, branch)
			counter(ch, branchDropped, float64(br.Dropped), group, stage, branch)
		}
	}
}

// stageLabels returns the stage label of each stage: its name, made valid
// UTF-8, and, for the second and later stages of the same name, "#" and
// that stage's number among them ("enrich#2"), so that no two series of a
// Group collide.
func stageLabels(stats []pipeline.StageStats) []string {
	names := make([]string, len(stats))
	seen := make(map[string]int, len(stats))
	for i := range stats {
		n := strings.ToValidUTF8(stats[i].Name, "\uFFFD")
		seen[n]++
		if k := seen[n]; k > 1 {
			n += "#" + strconv.Itoa(k)
		}
		names[i] = n
	}
	return names
}
