// Command pipeline traces every system call on the machine and runs the
// events through a bpfchan pipeline, with a live view and a final summary
// whose figures reconcile.
//
//	sudo go run ./examples/pipeline                   # until Ctrl-C
//	sudo go run ./examples/pipeline -duration 10s -important execve,connect
//	sudo go run ./examples/pipeline -duration 5s -json
//	sudo go run ./examples/pipeline -metrics 127.0.0.1:9100   # and scrape /metrics
//
// The kernel side (bpf/tracer.c, compiled by bpf2go; the generated
// tracer_bpfel.go and tracer_bpfel.o are committed, so no clang is needed)
// is attached to the raw tracepoint sys_enter, which needs neither tracefs
// nor kprobes. For every syscall of every process except this one it adds
// one to a per-syscall counter in the hash map "counts", and writes one
// 40-byte event (timestamp, pid, tid, syscall number, cpu, comm) into the
// ring buffer "events"; an event that does not fit is counted in "drops".
//
// The user side is one pipeline.Group (flow.go):
//
//	ring buffer --pump.RingBufBatches--> []event, up to 256 per receive
//	  --Map--> count: maps.Add on an Entry of the kernel counter seen[0]
//	           (one kernel-atomic add per batch)
//	  --Map--> pick the important events of the batch (-important), in a
//	           plain loop, and recycle the batch
//	  --Filter--> non-empty picks --> one event at a time
//	  --To--> pump.QueueWriter --> the BPF queue "important"
//	  --pump.Queue--> ForEach: the worker prints each one
//	hash map "counts" --watch.Map--> ForEach: the "top syscalls" panel
//
// Picking inside the batch keeps the per-event cost to a loop iteration:
// a channel hop per event would cost about three times as much (see
// BenchmarkDrain, which compares the flow with a raw cilium/ebpf loop).
//
// Stopping: Ctrl-C or the end of -duration first stops the kernel side
// for good: a gate in the BPF program is closed from Go (a syscall program
// run once with BPF_PROG_TEST_RUN), which returns how many runs got in; the
// program waits until that many have finished, then detaches. (Detaching
// alone does not wait for the runs under way.) It then waits until the ring
// pump has taken out every event the kernel wrote, and stops the
// pipeline.Group gracefully: every stage drains, the queue writer pushes
// what it holds, and the queue pump is closed only after the writer, so
// the worker gets every important event. A second Ctrl-C kills the
// program. The summary then checks every equation: syscalls traced =
// counted in the kernel = written to the ring buffer + ring full; written
// = received by the ring pump = counted by the count stage; important =
// enqueued = worked; any loss is shown with its reason.
//
// Exit codes: 0 when the figures reconcile, 1 when they do not or the
// pipeline failed, 2 for bad flags or when BPF is not available (one
// sentence on stderr says what is missing).
//
// With -metrics host:port, the program serves Prometheus metrics at
// http://host:port/metrics while it runs (package metrics, from a registry
// of its own): the ring pump "events", the queue writer "important_writer"
// and the queue pump "important" (bpfchan_pump_*{pump=...}), the watcher
// "counts" (bpfchan_watch_*) and every stage of the Group "pipeline"
// (bpfchan_stage_*{group="pipeline",stage=...}). The server stops, after
// the scrapes in progress, when the program has printed its summary.
//
// On a terminal the view is redrawn four times a second; otherwise (or with
// -json, where it goes to stderr) one plain line per second.
package main
