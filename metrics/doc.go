// Package metrics exports the Stats of bpfchan's handles as Prometheus
// metrics: every pump, watcher and pipeline stage, and any other handle
// that implements [Handle] (the jetstream module's).
//
//	c := metrics.NewCollector()
//	reg.MustRegister(c)
//	c.Add("events", src) // a *pump.Source[T]
//	c.Add("pipeline", g) // a *pipeline.Group: one set of series per stage
//
// # What is exported
//
// Counters end in _total and count in base units (seconds); gauges are
// values that go down. Every series has one label naming the handle, with
// the name given to [Collector.Add]:
//
//	bpfchan_pump_{received,delivered,dropped,decode_errors,lost_samples,
//	  overwritten,polls,empty_polls,full_retries,acked}_total{pump="events"}
//	bpfchan_pump_unacked_bytes{pump=...}     a RingBufAcked source: produced - acked
//	bpfchan_watch_{polls,changes,events,coalesced,discarded,decode_errors,
//	  poll_seconds}_total{watch=...}
//	bpfchan_watch_pending, bpfchan_watch_interval_seconds   gauges
//	bpfchan_stage_{in,out,dropped,errors,busy_seconds}_total{group=..., stage="enrich"}
//	bpfchan_stage_workers, bpfchan_stage_buffered{group=..., stage=...}   gauges
//	bpfchan_stage_branch_{out,dropped}_total{group=..., stage=..., branch="0"}   Tee and Shard
//	bpfchan_<kind>_<name>_total{<kind>=...}  a Handle's counters
//
// A Duplex exports the sum of its two directions. A Group's stages are
// labelled with the Group's name (group) and the stage's (stage); a stage
// whose name another stage of the Group already has gets "#2", "#3", ...
// appended, in the order the stages were built. Each HELP text says what
// its metric counts; the fields' documentation in pump.Stats, watch.Stats
// and pipeline.StageStats says more. StageStats.Busy is an estimate that
// can read slightly lower than a moment before; the Collector exports the
// highest value it has seen, so the counter never goes down.
//
// # Costs and contracts
//
// The Collector does its work when it is collected, at scrape time: it
// starts no goroutine and no timer, keeps no metric objects between scrapes,
// and its descriptors are made once (a Handle's, the first time a counter
// name is emitted). A scrape reads each handle's Stats once and sends its
// series, about ten per handle. Reading Stats never holds up a handle's hot
// path: a pump's are atomic loads of figures the pump publishes whenever it
// is about to wait and when it stops (so a busy pump's figures may lag by
// one drain); a Group's are atomic loads (its lock is taken only to list the
// stages); a watcher's take the watcher's lock for a copy of the struct,
// which the watcher holds only to update it once per poll or event. The
// Collector's own lock is held only to list the handles, never while Stats
// are read or metrics sent, so a slow scrape does not delay Add or Remove.
//
// A handle that has stopped keeps its final figures until it is removed:
// the Collector holds a reference to it, never its goroutine or descriptors.
// Remove every handle you are done with, or its figures (and the handle's
// memory) stay. A scrape under way when Add or Remove is called may or may
// not see the change.
//
// Describe sends no descriptor, so a registry treats the Collector as
// unchecked: the handles and the kinds of Handle values change after it is
// registered. The registry still checks what it collects at every scrape
// (names, label sets, duplicate series), and reports a problem as an error of
// that scrape: two Collectors in one registry exporting a handle under the
// same name, or a Handle emitting a counter name that is not snake_case or
// emitting one twice.
//
// Add panics when given something it cannot export (the message names its
// type), a name that is empty or not valid UTF-8, or a Handle whose kind is
// not snake_case or is one of bpfchan's own (pump, watch, stage). Collect
// never panics on what it reads.
//
// The Prometheus client library is a dependency of this package alone:
// a program that imports pump, watch or pipeline without metrics builds no
// Prometheus code.
package metrics
