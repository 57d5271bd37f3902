package watch

import (
	"github.com/bpfchan/bpfchan/internal/snapshot"
	"github.com/bpfchan/bpfchan/maps"
)

// Errors returned by this package, wrapped with the operation and the map's
// name. Match them with errors.Is. Size mismatches match maps.ErrSizeMismatch
// (codec.ErrSize); a cancelled context is reported as context.Cause(ctx).
var (
	// ErrUnwatchable: the map's type cannot be watched. Hash, LRU hash,
	// array and LPM trie maps can; queues, stacks, ring buffers, perf event
	// arrays, per-CPU maps and maps of maps cannot.
	ErrUnwatchable = snapshot.ErrUnwatchable
	// ErrClosed: the map was closed while the watcher polled it (maps.ErrClosed).
	ErrClosed = maps.ErrClosed
	// ErrKeyNotExist: Key gave up (its context ended) before the key existed
	// (cilium's sentinel, maps.ErrKeyNotExist).
	ErrKeyNotExist = maps.ErrKeyNotExist
)
