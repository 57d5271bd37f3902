// Command pipeline traces every system call on the machine and runs the
// events through a bpfchan pipeline, with a live view and a final summary
// whose figures reconcile.
//
//	sudo go run ./examples/pipeline                   # until Ctrl-C
//	sudo go run ./examples/pipeline -duration 10s -important execve,connect
//	sudo go run ./examples/pipeline -duration 5s -json
//
// The kernel side (bpf/tracer.c, compiled by bpf2go; the generated
// tracer_bpfel.go and tracer_bpfel.o are committed, so no clang is needed)
// is attached to the raw tracepoint sys_enter, which needs neither tracefs
// nor kprobes. For every syscall of every process except this one it adds
// one to a per-syscall counter in the hash map "counts", and writes one
// 40-byte event (timestamp, pid, tid, syscall number, cpu, comm) into the
// ring buffer "events"; an event that does not fit is counted in "drops".
//
// The user side: ring buffer -> count every event (an atomic add on a
// kernel counter) -> keep the important syscalls (-important) -> push them
// into the BPF queue "important" -> pop them -> a worker prints each one.
// A watcher over "counts" feeds the "top syscalls" panel.
//
// Stopping: Ctrl-C or the end of -duration detaches the program first (the
// kernel figures are then final), then stops the pipeline gracefully: what
// the ring buffer and the queue hold is still processed. A second Ctrl-C
// kills the program. The summary then checks every equation: events written
// by the kernel = received by the ring pump = counted; important = enqueued
// = worked; any loss is shown with its reason.
//
// Exit codes: 0 when the figures reconcile, 1 when they do not or the
// pipeline failed, 2 for bad flags or when BPF is not available (one
// sentence on stderr says what is missing).
//
// On a terminal the view is redrawn four times a second; otherwise (or with
// -json, where it goes to stderr) one plain line per second.
package main
