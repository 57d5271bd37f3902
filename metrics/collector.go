package metrics

import (
	"fmt"
	"reflect"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bpfchan/bpfchan/pipeline"
	"github.com/bpfchan/bpfchan/pump"
	"github.com/bpfchan/bpfchan/watch"
)

// Handle is how a handle that is not a pump, a watcher or a pipeline Group
// (the jetstream module's, or a program's own) is exported: each counter
// it emits becomes bpfchan_<kind>_<name>_total{<kind>="<the name given to
// Add>"}. MetricKind must be snake_case ([a-z][a-z0-9_]*) and constant for
// a value; the kinds pump, watch and stage (and kinds starting with them
// and an underscore) are bpfchan's own. MetricCounters calls emit once per
// counter, with a snake_case name (without _total) and a value that never
// goes down; emit must not be called after MetricCounters returns.
type Handle interface {
	MetricKind() string
	MetricCounters(emit func(name string, value uint64))
}

// The method sets Add recognises. Handles are generic, so they are known by
// the Stats they report, not by their concrete types.
type (
	pumpHandle  interface{ Stats() pump.Stats }
	ackHandle   interface{ Positions() (uint64, uint64) } // (acked, produced)
	watchHandle interface{ Stats() watch.Stats }
	groupHandle interface{ Stats() []pipeline.StageStats }
)

// Collector is a prometheus.Collector over bpfchan handles. It reads each
// handle's Stats when it is collected (at scrape time) and keeps nothing
// between scrapes but the handles themselves, so it starts no goroutine and
// no timer. Its zero value is ready to use; a Collector is safe for
// concurrent use, and Add and Remove may be called while it is collected.
type Collector struct {
	mu      sync.Mutex
	entries map[string]entry
}

// entry is one added handle: collect emits its metrics, labelled name.
type entry interface {
	collect(name string, ch chan<- prometheus.Metric)
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns an empty Collector. Register it with a
// prometheus.Registerer, then Add the handles to export.
func NewCollector() *Collector { return &Collector{} }

// Add exports h under name, replacing what was added under that name
// before. h is a pump handle (anything with Stats() pump.Stats: a Source,
// Sink or Duplex, whose summed Stats are exported; with Positions() too, a
// RingBufAcked source, which adds bpfchan_pump_unacked_bytes), a
// *watch.Watcher, a *pipeline.Group, or a [Handle] (which wins when h is
// also one of the others). name labels every series of h (pump=, watch=,
// or group= beside stage=, or the Handle's kind); it must be non-empty
// valid UTF-8.
//
// Add panics, naming h's type, when h is none of these (nil included), and
// when name or a Handle's kind is invalid: both are programmer errors.
// A handle that has stopped keeps its final figures until it is removed.
func (c *Collector) Add(name string, h any) {
	if name == "" || !utf8.ValidString(name) {
		panic(fmt.Sprintf("metrics: Add %q (%T): the name must be non-empty valid UTF-8", name, h))
	}
	e := newEntry(name, h)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[string]entry)
	}
	c.entries[name] = e
}

// Remove stops exporting what was added under name; it does nothing when
// there is none. A scrape already under way may still include it.
func (c *Collector) Remove(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, name)
}

// newEntry returns the entry for h, or panics.
func newEntry(name string, h any) entry {
	if v := reflect.ValueOf(h); v.Kind() == reflect.Pointer && v.IsNil() {
		panic(fmt.Sprintf("metrics: Add %q: a nil %T", name, h))
	}
	switch h := h.(type) {
	case Handle:
		return newHandleEntry(name, h)
	case pumpHandle:
		e := &pumpEntry{h: h}
		e.ack, _ = h.(ackHandle)
		return e
	case watchHandle:
		return watchEntry{h}
	case groupHandle:
		return &groupEntry{h: h}
	}
	panic(fmt.Sprintf("metrics: Add %q: unknown kind of handle %T (want a pump Source, Sink, Duplex or AckSource, a *watch.Watcher, a *pipeline.Group, or a metrics.Handle)", name, h))
}

// Describe sends no descriptor: the set of handles, and the kinds of the
// Handle values among them, change after the Collector is registered, so it
// is an unchecked collector, and the registry checks the consistency of
// what it collects at every scrape instead.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect reads the Stats of every handle added and sends their metrics.
// It holds the Collector's lock only to list the handles, never while it
// reads their Stats or sends.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	type named struct {
		name string
		e    entry
	}
	c.mu.Lock()
	list := make([]named, 0, len(c.entries))
	for name, e := range c.entries {
		list = append(list, named{name, e})
	}
	c.mu.Unlock()
	for _, n := range list {
		n.e.collect(n.name, ch)
	}
}

// newDesc returns the descriptor of bpfchan_<subsystem>_<name>.
func newDesc(subsystem, name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName("bpfchan", subsystem, name), help, labels, nil)
}

// stat is one counter of a Stats struct S: its descriptor and its field.
type stat[S any] struct {
	desc  *prometheus.Desc
	value func(*S) uint64
}

// counters sends the counters list reads from s.
func counters[S any](ch chan<- prometheus.Metric, list []stat[S], s *S, labels ...string) {
	for _, c := range list {
		counter(ch, c.desc, float64(c.value(s)), labels...)
	}
}

// counter sends one counter.
func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

// gauge sends one gauge.
func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}
