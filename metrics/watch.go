package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bpfchan/bpfchan/watch"
)

// watchCounters are the counters of every watcher.
var watchCounters = []stat[watch.Stats]{
	{watchDesc("polls_total", "Polls of the watched map, the baseline read and failed polls included."),
		func(s *watch.Stats) uint64 { return s.Polls }},
	{watchDesc("changes_total", "Changes the polls observed."),
		func(s *watch.Stats) uint64 { return s.Changes }},
	{watchDesc("events_total", "Events the watcher delivered on its channel."),
		func(s *watch.Stats) uint64 { return s.Events }},
	{watchDesc("coalesced_total", "Changes merged into, or cancelled out with, a pending event of the same key."),
		func(s *watch.Stats) uint64 { return s.Coalesced }},
	{watchDesc("discarded_total", "Pending events dropped because the watcher was aborted or a poll failed."),
		func(s *watch.Stats) uint64 { return s.Discarded }},
	{watchDesc("decode_errors_total", "Changes whose key or value failed to decode, skipped."),
		func(s *watch.Stats) uint64 { return s.DecodeErrors }},
}

var (
	watchPollSeconds = watchDesc("poll_seconds_total", "Time the watcher spent polling its map.")
	watchPending     = watchDesc("pending", "Events waiting for the consumer (at most one per key).")
	watchInterval    = watchDesc("interval_seconds", "The pause before the watcher's next poll.")
)

func watchDesc(name, help string) *prometheus.Desc { return newDesc("watch", name, help, "watch") }

// watchEntry exports a watcher's Stats. Reading them takes the watcher's
// lock for a copy of the struct; the watcher holds it only to update them.
type watchEntry struct{ h watchHandle }

func (e watchEntry) collect(name string, ch chan<- prometheus.Metric) {
	s := e.h.Stats()
	counters(ch, watchCounters, &s, name)
	counter(ch, watchPollSeconds, s.PollTime.Seconds(), name)
	gauge(ch, watchPending, float64(s.Pending), name)
	gauge(ch, watchInterval, s.Interval.Seconds(), name)
}
