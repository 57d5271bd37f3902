// Command producer-consumer is clj-ebpf's Lab 15.2, "Producer-Consumer
// Pipeline", on real kernel maps: a BPF program writes events into a ring
// buffer, and three stages connected by BPF queues filter, enrich and
// aggregate them into a BPF hash map, with a round-robin fan-out to several
// workers and every drop counted.
//
//	sudo go run ./examples/producer-consumer                        # 5 seconds, 20000 events/s
//	sudo go run ./examples/producer-consumer -events 100000 -duration 0
//	sudo go run ./examples/producer-consumer -queue 16 -ring 4096 -rate 400000   # watch the drops
//
// The flow, one pipeline.Group (flow.go), with the lab's map sizes:
//
//	BPF program (internal/producer, run with BPF_PROG_TEST_RUN: one 16-byte record per run)
//	  --> ring buffer (256 KiB) --pump.RingBuf--> categorize --> filter
//	  --pump.QueueWriter--> BPF queue 1 (128-byte values)
//	  --pump.Queue--> Shard, round-robin --> enrich × -workers --> Merge
//	  --pump.QueueWriter--> BPF queue 2 (256-byte values)
//	  --pump.Queue--> Batch --> aggregate: maps.Add per category and total
//	  --> stats map (32-byte keys: syscall, network, filesystem, process, total)
//
// The producer writes only a sequence number; the event type (1 to 4) and
// the pid are derived from it by a fixed hash, so the mix of events is the
// same on every run and the test can predict the stats map exactly. The
// stages are the lab's: categorize (process events priority 1, network 2,
// the others 3), discard low-priority events of pids under 100, look up a
// process name. The fan-out is the lab's exercise 3 and the drop counter its
// exercise 1: a full queue drops the event (-full drop, counted by the
// writer pump) or makes the stage wait (-full block); a full ring buffer
// makes the BPF program count the event as lost. Aggregation adds per batch
// (one kernel-atomic maps.Add per category present) rather than per event.
//
// At the end (-events reached, the -duration, or Ctrl-C) the producer stops
// and the group is stopped gracefully: the ring pump delivers what the ring
// holds, and each queue's source is closed only after the writer feeding it
// has pushed everything, so every stage drains before the next one stops.
// The summary then checks every equation between the stages, down to
// produced = aggregated + filtered + dropped (ring full, queue 1 full, queue
// 2 full), and that the round-robin workers got shares at most one apart.
//
// # Goroutines, stopping, errors
//
// The group owns every goroutine: stage workers, the pumps it adopted, the
// producer loop and the two goroutines that close the queue sources in
// turn. Ctrl-C stops it gracefully (Stop), a second Ctrl-C kills the
// program. Exit codes: 0 when the figures reconcile, 1 when they do not or
// the pipeline failed, 2 for bad flags or when BPF is unavailable (one
// sentence on stderr says what is missing).
package main
