// Command fleet runs a fleet of node agents on one machine and shows that a
// kernel event recorded by any of them reaches a NATS JetStream stream
// exactly once, even when an agent is killed with SIGKILL in the middle of
// the run.
//
//	cd jetstream
//	sudo go run ./examples/fleet                      # 3 nodes, until Ctrl-C
//	sudo go run ./examples/fleet -duration 20s -crash # node-1 killed halfway, restarted
//	sudo go run ./examples/fleet -duration 10s -json  # the summary as JSON
//	sudo go run ./examples/fleet -nats nats://host:4222 -metrics 127.0.0.1:9100
//
// # What runs
//
// The parent starts an embedded JetStream server (its file store in a
// temporary directory; -nats names another server instead), creates the
// stream EVENTS (jetstream.ForwardStream, subjects events.>) and the KV
// bucket "blocked", and starts -nodes agents: this program run again with
// its configuration in the environment variable BPFCHAN_FLEET_AGENT, each
// in a process group of its own and killed by the kernel if the parent
// dies (Pdeathsig).
//
// Each agent loads its own probe (bpf/probe.c, compiled by bpf2go; the
// generated probe_bpfel.go and probe_bpfel.o are committed, so no clang is
// needed) on the raw tracepoint sys_enter, which needs neither tracefs nor
// kprobes. A probe takes its node's share of the machine's system calls,
// those of processes whose pid % nodes is the node's index, except the
// fleet's own processes (their command name), and writes one 40-byte event
// per call into its ring buffer. Its maps and its link are pinned in the
// node's directory, under a temporary directory on bpffs (under -pins,
// /sys/fs/bpf by default, where a bpffs is mounted if none is): while the
// agent is down, the kernel keeps the program attached and writing, and
// the probe counts, per CPU, the events it tried to write, those the ring
// had no room for, and the same two for blocked commands.
//
// The agent reads its pinned ring with pump.RingBufAcked and forwards it
// with jetstream.Forward (WithPacked: one message per batch; WithNode) to
// events.<node>, so a record leaves the ring only once the stream holds
// it. It mirrors the bucket into its probe's hash map with
// jetstream.NewMirror: the keys are plain command names (WithKeyDecoder),
// so `nats kv put blocked curl 1` works from outside, and any value blocks.
// The probe flags the events of blocked commands, and counts them.
//
// The parent runs a load of its own (-load commands a second, picked among
// date, uname, id and true), so that every node has system calls to trace.
// A quarter into the run it puts -block (date) into the bucket, and deletes
// it at three quarters: the blocked figures of every node grow in between
// and stand still otherwise. With -crash it SIGKILLs node-1's agent halfway
// through, in the middle of a burst (dd copying 50,000 bytes one at a time
// in node-1's share, 100,000 system calls; the kill comes once the probe has
// written 20,000 events more), leaves it down for -down, and starts it
// again on the same pins:
// the new agent checks, from the kernel's records, that the pinned link
// still attaches a program to sys_enter whose maps include the pinned ring
// (and attaches the program again if the link is gone), and that the probe
// is writing into the ring (its producer position moves, or it counts the
// ring full), before it reports itself up. Its Forwarder then finds in the
// stream what the killed agent had published without acknowledging it to
// the ring, and skips it (the summary shows how many records).
//
// A collector in the parent consumes the stream with jetstream.NewConsumer
// (a pull consumer created before any agent starts, acknowledging every
// record) and checks, per node and ring, that each record is there once:
// a record is identified by its position, Msg.Pos plus Msg.Index records
// (the probe writes every record it reserves, all of one size), and one
// seen twice is a redelivery when its message (Msg.Seq) had been delivered
// before (Msg.Delivered), a duplicate in the stream otherwise. It also
// counts records missing below the highest one seen (gaps) and records that
// came after a later one of their ring (out of order: only a retried
// publish reorders).
//
// # The end, and the summary
//
// At the end of -duration, or at Ctrl-C, the parent stops the load and
// asks every agent to stop (it closes its stdin). An agent closes its
// probe's gate (a syscall program run with BPF_PROG_TEST_RUN: no run
// counts or writes after it), waits until every run admitted before has
// finished, detaches the probe (a detach alone does not wait for the runs
// under way), flushes what its ring still holds (Forwarder.Flush), closes
// its handles and reports. The collector then gets the rest of the stream,
// and the summary says, per node,
//
//	written by the kernel = in the stream (exactly once) + ring full
//
// and the same for the events of blocked commands, and prints "the figures
// reconcile" only when every equation holds for every node with no
// duplicate, no gap and one ring per node; the exit status is 1 otherwise.
// A second Ctrl-C aborts: the agents are killed and everything is removed,
// without a summary; a third kills the program.
//
// Everything the run made is removed when it ends, also after Ctrl-C: the
// agents, the pins (the pinned links with them, which detaches the
// probes), the bpffs mount if it made one, the collector's consumer, and
// the embedded server and its store. A parent killed with SIGKILL takes
// its agents with it (Pdeathsig; an agent whose stdin ends without the
// parent's stop line exits too), but leaves its pins, which keep the
// probes attached, and its server's store: the next run removes the pin
// directories and stores of parents that are gone, and says so. (A bpffs
// that such a parent mounted on /sys/fs/bpf stays mounted.)
//
// # Live view, metrics, exit codes
//
// On a terminal the view is redrawn four times a second: per node its
// state, the events per second reaching the stream, what the kernel
// wrote, what the stream holds, ring full, blocked, the backlog (written
// by the kernel, not yet in the stream) and the records the ring has
// acknowledged, and restarts; the stream's depth and what the collector
// has still to get; the bucket's blocked names; and what the run did.
// Otherwise (or with -json, where it goes to stderr) one plain line a
// second, and a line for each thing the run does.
//
// With -metrics host:port the parent serves Prometheus metrics at
// /metrics (the core's metrics.Collector): the collector's Consumer
// ("collector"), and for each node, under its name, what its agent last
// reported of its handles (it reports every 250 ms on its stdout): the
// ring's AckSource as a pump (bpfchan_pump_*{pump="node-1"}, with
// bpfchan_pump_unacked_bytes), the Forwarder and the Mirror
// (bpfchan_jetstream_forwarder_*, bpfchan_jetstream_mirror_*), and the
// probe's counters, which the parent reads from the pinned map at each
// scrape (bpfchan_fleet_kernel_*). A restarted agent's handles start from
// zero again: a counter reset, as after any process restart.
//
// Exit codes: 0 when the figures reconcile, 1 when they do not or the run
// failed, 2 for bad flags or when BPF is not available (one sentence on
// stderr says what is missing).
package main
