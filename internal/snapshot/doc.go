// Package snapshot is the machinery under package watch: it keeps the last
// observed contents of a BPF hash or array map (or of one key) as raw bytes
// and, on each poll, reports which entries were added, updated or deleted.
//
// A whole-map [Table] reads with BPF_MAP_LOOKUP_BATCH and a cursor (never one
// syscall per key), falls back to GET_NEXT_KEY + LOOKUP_ELEM where the
// kernel refuses batch lookups (kernels before 5.6), and reads a BPF_F_MMAPABLE
// array straight from its shared memory with no syscall at all. The bpf(2)
// calls are made directly on buffers the Table owns, because cilium/ebpf's
// Map.BatchLookup allocates a cursor and an error on every sweep; once warm,
// a poll that finds nothing changed allocates nothing, whatever the map size.
// The diff itself (which entries changed) does not depend on where entries
// come from: the fuzz target runs it on tables held in plain memory.
//
// Tables and Keys start no goroutine and are not safe for concurrent use;
// their owner (a watcher's goroutine) polls them and closes them. They own
// the map they are given (a watcher's clone of the caller's map): their
// syscalls go to it, Close closes it, and an mmapable array's is closed at
// once, its read-only mapping holding the map instead. Closing the caller's
// map does not concern them. Errors match mapref's sentinels: ErrMapType for
// a map that cannot be watched, ErrClosed for a poll after Close.
//
// Reads are not atomic across entries: a poll sees each entry as it was
// when the kernel copied it, and entries written during a sweep may or may
// not be seen by that sweep.
package snapshot
