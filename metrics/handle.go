package metrics

import (
	"fmt"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// reservedKinds are the subsystems of bpfchan's own metrics.
var reservedKinds = []string{"pump", "watch", "stage"}

// handleEntry exports a Handle's counters. Their descriptors are made the
// first time a counter's name is emitted and kept for the entry's life.
type handleEntry struct {
	h    Handle
	kind string

	mu    sync.Mutex
	descs map[string]*prometheus.Desc
}

func newHandleEntry(name string, h Handle) *handleEntry {
	kind := h.MetricKind()
	if !snakeCase(kind) {
		panic(fmt.Sprintf("metrics: Add %q (%T): MetricKind %q is not snake_case", name, h, kind))
	}
	for _, r := range reservedKinds {
		if kind == r || strings.HasPrefix(kind, r+"_") {
			panic(fmt.Sprintf("metrics: Add %q (%T): MetricKind %q is bpfchan's own", name, h, kind))
		}
	}
	return &handleEntry{h: h, kind: kind, descs: make(map[string]*prometheus.Desc)}
}

func (e *handleEntry) collect(name string, ch chan<- prometheus.Metric) {
	done := false
	e.h.MetricCounters(func(counter string, v uint64) {
		if done {
			return // called after MetricCounters returned: ch may be closed
		}
		d := e.desc(counter)
		m, err := prometheus.NewConstMetric(d, prometheus.CounterValue, float64(v), name)
		if err != nil {
			m = prometheus.NewInvalidMetric(d, err)
		}
		ch <- m
	})
	done = true
}

// desc returns the descriptor of the counter named counter. A name that is
// not snake_case gets a descriptor carrying the error, which the registry
// reports at the scrape.
func (e *handleEntry) desc(counter string) *prometheus.Desc {
	e.mu.Lock()
	defer e.mu.Unlock()
	if d, ok := e.descs[counter]; ok {
		return d
	}
	var d *prometheus.Desc
	if snakeCase(counter) {
		d = newDesc(e.kind, counter+"_total",
			fmt.Sprintf("The %s count of a %s, as its MetricCounters reports it.", counter, e.kind), e.kind)
	} else {
		d = prometheus.NewInvalidDesc(fmt.Errorf("metrics: %s counter %q is not snake_case", e.kind, counter))
	}
	e.descs[counter] = d
	return d
}

// snakeCase reports whether s matches [a-z][a-z0-9_]*.
func snakeCase(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}
