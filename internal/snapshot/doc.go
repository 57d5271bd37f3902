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
//
// Tables and Keys start no goroutine and are not safe for concurrent use;
// their owner (a watcher's goroutine) polls them and closes them (Close
// unmaps an mmapable array's memory or closes their clone of the map). Their
// syscalls go to a private clone of the caller's *ebpf.Map, never to a file
// descriptor number the caller could close and the process reuse; closing
// the caller's map makes the next poll fail with [ErrClosed]. Reads are not atomic across entries: a poll sees each
// entry as it was when the kernel copied it, and entries written during a
// sweep may or may not be seen by that sweep.
package snapshot
