// Command counter is clj-ebpf's Lab 15.1, "Event Counter Dashboard", on a
// real kernel map: four event counters (syscalls, packets, file opens, file
// closes) in a BPF hash map, incremented by BPF programs, read and written
// through maps.Entry, followed with watch.Changes, shown with their rates,
// and raising an alert when the syscalls counter crosses a threshold.
//
//	sudo go run ./examples/counter                  # 5 seconds
//	sudo go run ./examples/counter -duration 0      # until Ctrl-C
//	sudo go run ./examples/counter -threshold 50000 -interval 500ms
//
// What it shows, step by step as in the lab:
//
//   - The stats map: 4-byte keys (the event type, 1 to 4), 8-byte values,
//     16 entries, every counter stored as zero (init-counters!).
//   - The lab's test of map-entry-ref, on the kernel map: Load, Store,
//     maps.Add (swap! inc), Update (swap! + 10) and CompareAndSwap, which
//     succeeds from the current value and fails from a stale one. For 8-byte
//     values of a hash map these are kernel-atomic (Entry.Atomic reports true),
//     not the userspace read-modify-write clj-ebpf warns about.
//   - Kernel events: the lab simulated them with swap! from a thread; here one
//     BPF program per counter (an atomic add into the map value, built with
//     cilium/ebpf/asm by internal/producer and run with BPF_PROG_TEST_RUN)
//     runs a varying number of times every -tick; one run is one event.
//     A packet event adds 10, as in the lab. Meanwhile a goroutine adds to
//     file-closes from userspace with maps.Add, into the value the kernel is
//     adding to: no add is lost.
//   - The dashboard (display-counters) every -interval: each counter read with
//     Entry.Load, its rate since the previous refresh and the rolling average
//     of the last -window rates (exercises 1 and 3).
//   - A watch.Changes watcher per counter (map-watch-changes), counting the
//     changes it sees; the syscalls watcher raises an alert when the value
//     goes above -threshold (exercise 2; once, on the crossing, where the
//     lab's solution repeats it on every later change). Watchers are
//     level-triggered: they see one change per poll, not one per event.
//
// At the end (the -duration, or Ctrl-C) the programs stop, the watchers are
// closed gracefully (one last poll each, so they report the final values)
// and the final figures are checked: every counter equals its program's
// runs × delta plus what userspace added; each watcher's last value is the
// map's; the alert fired exactly once if the final value is above the
// threshold and never otherwise.
//
// # Goroutines, stopping, errors
//
// One pipeline.Group owns the watchers, their consumers and the goroutine
// running the BPF programs; the main goroutine refreshes the dashboard.
// Ctrl-C stops the group gracefully (Stop), a second Ctrl-C kills the
// program. Exit codes: 0 when the figures reconcile, 1 when they do not or
// something failed, 2 for bad flags or when BPF is unavailable (one sentence
// on stderr says what is missing).
package main
