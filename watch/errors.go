package watch

import (
	"github.com/bpfchan/bpfchan/internal/mapref"
	"github.com/bpfchan/bpfchan/maps"
)

// Errors returned by this package, wrapped with the operation and the map's
// name (`watch Hash map "counts" (id 9): ...`). Match them with errors.Is.
// They are the module's sentinels, re-exported: one value per meaning in
// every package. Size mismatches match maps.ErrSizeMismatch (codec.ErrSize),
// a nil map maps.ErrNilMap (and ErrMapType), an array index not below the
// array's MaxEntries maps.ErrOutOfRange; a cancelled context is reported as
// context.Cause(ctx).
var (
	// ErrMapType: a nil map, or one of a type that cannot be watched
	// (maps.ErrMapType). Hash, LRU hash, array and LPM trie maps can be;
	// queues, stacks, ring buffers, perf event arrays, per-CPU maps and
	// maps of maps cannot.
	ErrMapType = maps.ErrMapType
	// ErrOption: an invalid option, or one the call does not take. It is
	// pump.ErrOption: the same value in every package.
	ErrOption = mapref.ErrOption
	// ErrClosed: the map was already closed when Key, Changes or Map was
	// called (maps.ErrClosed). Closing it later does not concern a watcher,
	// which reads its own clone.
	ErrClosed = maps.ErrClosed
	// ErrKeyNotExist: Key gave up (its context ended) before the key existed
	// (cilium's sentinel, maps.ErrKeyNotExist).
	ErrKeyNotExist = maps.ErrKeyNotExist
)
