// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// probe: the kernel side of one fleet node. Attached to the raw tracepoint
// sys_enter (no tracefs, no kprobes), it takes this node's share of the
// machine's system calls: those of processes whose tgid % nodes ==
// node_index, except the fleet's own processes (comm == self_comm). For each
// one it writes a struct event into the ring buffer "events", flagged
// EVENT_BLOCKED when the process's command name is a key of the hash map
// "blocked" (which user space keeps equal to a KV bucket), and counts, per
// CPU, in "counters":
//
//   C_EVENTS        events it tried to write (reserve called)
//   C_RING_FULL     of those, not written: the ring had no room
//   C_BLOCKED       events from blocked commands it tried to write
//   C_BLOCKED_FULL  of those, not written: the ring had no room
//   C_FINISHED      runs that passed the gate and finished
//
// so that C_EVENTS == records written + C_RING_FULL at every moment a run is
// not under way. The maps are pinned: an agent that restarts finds the ring,
// the counters and the blocked names where it left them, and the pinned link
// keeps this program attached (and writing) while no agent runs.
//
// The gate makes the end exact (a detach does not wait for the runs under
// way, and a task may be preempted inside one): every counted run takes a
// ticket with one atomic add on gate.state, which also tells it whether the
// gate is closed; close_gate (run once from user space with
// BPF_PROG_TEST_RUN) closes it and records in gate.passed how many runs got
// in. Once the sum of C_FINISHED over the CPUs equals gate.passed, the
// counters are final and the ring holds every event it will ever get.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define EVENT_BLOCKED 1

struct event {
	__u64 ts_ns; // bpf_ktime_get_ns: CLOCK_MONOTONIC
	__u32 tgid;  // the process
	__u32 pid;   // the thread
	__u32 nr;    // syscall number (the architecture's numbering)
	__u32 flags; // EVENT_BLOCKED
	__u8 comm[16];
};

// Keeps struct event in the object's BTF, for bpf2go's -type event (clang
// drops a type that only a local pointer uses).
struct event *const unused_event __attribute__((unused)) = 0;

const volatile __u32 node_index = 0;
const volatile __u32 nodes = 1;
const volatile __u8 self_comm[16] = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); // set from Go
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u8[16]); // a command name, NUL-padded
	__type(value, __u32);
} blocked SEC(".maps");

enum counter {
	C_EVENTS = 0,
	C_RING_FULL,
	C_BLOCKED,
	C_BLOCKED_FULL,
	C_FINISHED,
	C_COUNTERS,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, C_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

// Each close adds GATE_CLOSED, and the gate is closed while state is at
// least GATE_CLOSED: closing again keeps it closed (a flag bit would be
// cleared by the second add), and 2^56 runs leave room for 255 closes.
#define GATE_CLOSED (1ULL << 56)

struct gate {
	__u64 state;  // runs admitted, plus GATE_CLOSED per close
	__u64 passed; // set by close_gate: runs admitted before it closed
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gate);
} gate SEC(".maps");

// count adds one to counters[c] on this CPU. Other runs may interleave on
// the same CPU (the tracepoint is preemptible), hence the atomic add.
static __always_inline void count(__u32 c)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &c);
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline int is_self(const __u8 *comm)
{
	const __u64 *a = (const __u64 *)comm;
	const volatile __u64 *b = (const volatile __u64 *)self_comm;
	return a[0] == b[0] && a[1] == b[1];
}

SEC("raw_tracepoint/sys_enter")
int on_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (nodes > 1 && tgid % nodes != node_index)
		return 0;
	__u8 comm[16] __attribute__((aligned(8))) = {};
	bpf_get_current_comm(comm, sizeof(comm));
	if (is_self(comm))
		return 0;

	__u32 zero = 0;
	struct gate *g = bpf_map_lookup_elem(&gate, &zero);
	if (!g || __sync_fetch_and_add(&g->state, 1) >= GATE_CLOSED)
		return 0;

	int is_blocked = bpf_map_lookup_elem(&blocked, comm) != NULL;
	count(C_EVENTS);
	if (is_blocked)
		count(C_BLOCKED);
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		e->ts_ns = bpf_ktime_get_ns();
		e->tgid = tgid;
		e->pid = (__u32)id;
		e->nr = (__u32)ctx->args[1];
		e->flags = is_blocked ? EVENT_BLOCKED : 0;
		__builtin_memcpy(e->comm, comm, sizeof(comm));
		bpf_ringbuf_submit(e, 0);
	} else {
		count(C_RING_FULL);
		if (is_blocked)
			count(C_BLOCKED_FULL);
	}
	count(C_FINISHED);
	return 0;
}

// close_gate closes the gate and records how many runs got in before. Run
// it with BPF_PROG_TEST_RUN; it returns 0, or 2 when the gate was closed
// already (passed is set then).
SEC("syscall")
int close_gate(void *ctx)
{
	__u32 zero = 0;
	struct gate *g = bpf_map_lookup_elem(&gate, &zero);
	if (!g)
		return 1;
	__u64 old = __sync_fetch_and_add(&g->state, GATE_CLOSED);
	if (old >= GATE_CLOSED)
		return 2;
	g->passed = old;
	return 0;
}
