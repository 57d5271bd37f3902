// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// tracer: one event per system call entry, from the raw tracepoint
// sys_enter (no tracefs mount and no kprobes needed).
//
// For every syscall made by any process except the one in self_tgid, it
//   1. adds one to counts[syscall nr] (a hash map the Go side watches; if it
//      is full, drops[DROP_UNCOUNTED] is incremented instead), then
//   2. writes one fixed-size struct event into the ring buffer "events"; a
//      record that does not fit is counted in drops[DROP_RING_FULL] instead.
// Once the gate is closed (see below) and every admitted run has finished
// (gate.passed == sum of finished over the CPUs):
//   gate.passed == sum(counts) + drops[DROP_UNCOUNTED]
//               == records written + drops[DROP_RING_FULL].
//
// The maps "seen" and "important" are not touched here: the Go side counts
// what it received in seen[0] and pushes important events into the queue
// "important"; they live in this object so that bpftool shows the whole
// pipeline in one place.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct event {
	__u64 ts_ns; // bpf_ktime_get_ns: CLOCK_MONOTONIC
	__u32 pid;   // kernel pid: the thread id
	__u32 tgid;  // kernel tgid: the process id
	__u32 nr;    // syscall number (x86_64 numbering on amd64)
	__u32 cpu;
	__u8 comm[16];
};

// The tgid of the reader, set before loading, so that it does not trace itself.
const volatile __u32 self_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20); // 16 MiB: about 350,000 events of slack
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

enum drop_reason {
	DROP_RING_FULL = 0, // the ring buffer had no room: no event written
	DROP_UNCOUNTED = 1, // the counts map was full: event written, not counted
	DROP_REASONS,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DROP_REASONS);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

// The gate makes the end of a run exact. Every run that is to count takes
// a ticket first: an atomic add on gate.state that also tells it whether the
// gate is closed. close_gate (run once from Go) closes it with one atomic add
// of GATE_CLOSED, which returns how many runs got in before; those runs will
// all finish, and count themselves in finished. No later run counts or
// writes anything. Detaching alone would not do: the kernel does not wait
// for the runs already under way, and a task can be preempted between the
// tracepoint and this program for a while.
// Each close adds GATE_CLOSED, and the gate is closed while state is at
// least GATE_CLOSED: a second close keeps it closed (testing a flag bit
// would not: two adds of the same bit clear it).
#define GATE_CLOSED (1ULL << 56)

struct gate {
	__u64 state;  // runs admitted, plus GATE_CLOSED once closed
	__u64 passed; // set by close_gate: runs admitted before it closed
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gate);
} gate SEC(".maps");

// Runs admitted and finished, per CPU (no cache line bounces). A run stays
// on its CPU, but other runs may interleave there, hence the atomic add.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} finished SEC(".maps");

static __always_inline void drop(__u32 reason)
{
	__u64 *d = bpf_map_lookup_elem(&drops, &reason);
	if (d)
		__sync_fetch_and_add(d, 1);
}

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 4096);
	__type(value, struct event);
} important SEC(".maps");

SEC("raw_tracepoint/sys_enter")
int on_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (self_tgid && tgid == self_tgid)
		return 0;

	__u32 zero = 0;
	struct gate *g = bpf_map_lookup_elem(&gate, &zero);
	if (!g || __sync_fetch_and_add(&g->state, 1) >= GATE_CLOSED)
		return 0;

	__u32 nr = (__u32)ctx->args[1];

	__u64 *n = bpf_map_lookup_elem(&counts, &nr);
	if (!n) {
		__u64 init = 0;
		// BPF_NOEXIST: another CPU may have created it meanwhile; then look again.
		bpf_map_update_elem(&counts, &nr, &init, BPF_NOEXIST);
		n = bpf_map_lookup_elem(&counts, &nr);
	}
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		drop(DROP_UNCOUNTED);

	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		e->ts_ns = bpf_ktime_get_ns();
		e->pid = (__u32)id;
		e->tgid = tgid;
		e->nr = nr;
		e->cpu = bpf_get_smp_processor_id();
		bpf_get_current_comm(&e->comm, sizeof(e->comm));
		bpf_ringbuf_submit(e, 0);
	} else {
		drop(DROP_RING_FULL);
	}
	__u64 *f = bpf_map_lookup_elem(&finished, &zero);
	if (f)
		__sync_fetch_and_add(f, 1);
	return 0;
}

// close_gate closes the gate and records how many runs got in before. Run
// it once with BPF_PROG_TEST_RUN.
SEC("syscall")
int close_gate(void *ctx)
{
	__u32 zero = 0;
	struct gate *g = bpf_map_lookup_elem(&gate, &zero);
	if (!g)
		return 1;
	__u64 old = __sync_fetch_and_add(&g->state, GATE_CLOSED);
	if (old >= GATE_CLOSED)
		return 2; // already closed; passed is set
	g->passed = old;
	return 0;
}
