// Package kernatomic performs atomic read-modify-write ops on one value of a
// BPF hash, LRU hash or array map, atomic against BPF programs that update
// the same value with their own atomic instructions.
//
// For each map, [New] either
//
//   - maps a BPF_F_MMAPABLE array into the process and applies sync/atomic to
//     the shared value (no syscall per op: both sides use the same locked
//     instructions on the same memory), or
//   - loads one small helper program (BPF_PROG_TYPE_SYSCALL; the kernel only
//     accepts such programs sleepable, "Syscall programs can only be
//     sleepable") that is run once per op with BPF_PROG_TEST_RUN. Its context
//     carries the op, the operands and the key; the program looks the key up,
//     applies BPF_XCHG, BPF_CMPXCHG or BPF_ADD|BPF_FETCH to the value in place
//     and writes the old value back into the context. The package issues the
//     test-run syscall through internal/bpfcall, without allocating:
//     cilium's Program.Run (which works too, see [Helper.Program]) costs
//     more than the syscall.
//
// A missing key is created from the zero value with BPF_NOEXIST before an
// add, an exchange or a creating compare-and-swap; a concurrent creator wins
// (EEXIST just means: look it up again), so no value is ever clobbered.
// A plain compare-and-swap on a missing key reports [ErrKeyNotExist]. Store
// is an in-place exchange rather than a map update, because an update of a
// hash element replaces it and a BPF program still holding the old element
// would add into memory that is no longer the map's.
//
// The program looks the key up and then operates on the element it found;
// it is sleepable, so it can be preempted in between. A concurrent delete or
// LRU eviction of the same key there makes the op land on an element that
// left the map, and in a preallocated hash or LRU map possibly on one
// already reused for another key. Callers must not delete keys they update.
// A writable mapping of an mmapable array makes BPF_MAP_FREEZE fail (EBUSY)
// until Close.
//
// The atomic instructions come from internal/bpfasm: cilium/ebpf v0.22.0's
// asm.FetchAdd, asm.Xchg and asm.CmpXchg marshal as a plain, non-fetching
// add.
//
// No goroutines. A [Helper] is safe for concurrent use and does not own its
// map; Close unloads the program or drops the mapping. Ops racing with Close
// never fault: they complete on the map or report ErrClosed (on the mmap
// path, an op reporting ErrClosed may have reached the map all the same).
// Errors: [ErrKeyNotExist], [ErrFull] (a hash map with no room for a new
// key), [ErrClosed], [ErrUnsupported] (map type, sizes, or
// BPF_F_RDONLY_PROG), an error wrapping EPERM for an op the map's
// BPF_F_RDONLY or BPF_F_WRONLY forbids userspace (as the map syscalls
// refuse it), or the kernel's error wrapped with what failed. No error
// names the map: the caller adds its name, once.
package kernatomic
