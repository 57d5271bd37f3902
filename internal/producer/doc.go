// Package producer builds the BPF programs bpfchan's tests and benchmarks use
// as kernel-side producers. They are written with cilium/ebpf/asm, need
// nothing attached, and run through BPF_PROG_TEST_RUN (Program.Run with
// Repeat).
//
// Every producer numbers its runs with a sequence counter kept in a small
// state map, and stops producing at a budget that Run raises by exactly n:
// Program.Run may execute a program a little more often than Repeat asks
// (it restarts after a signal), so counting in the kernel is what makes
// "exactly n records" true. A run whose output did not fit (a full ring or
// queue) is counted as lost.
//
//   - [NewRing]: one ring-buffer record of a chosen size per run, carrying the
//     sequence number in its first 8 bytes (little-endian), the rest zero.
//   - [NewPerf]: the same record written to a perf event array.
//   - [NewPush]: one push per run into a queue or stack map; the value carries
//     the sequence number in its first 8 bytes.
//   - [NewHashAdd]: an atomic add of a constant to one key's 4- or 8-byte value
//     in a hash or array map, creating the key when missing.
//   - [NewUserRingDrain]: a program that drains a user ring buffer with
//     bpf_user_ringbuf_drain, counting, summing and checking the order of
//     the records in an array map; [NewUserRingWorker] does some work per
//     record, a drainer slow enough to be the bottleneck.
//   - [NewRingGate]: one ring-buffer record held reserved, not committed,
//     until the test opens the gate (a sleepable program whose read of user
//     memory waits in a userfaultfd page fault, holding no CPU).
package producer
