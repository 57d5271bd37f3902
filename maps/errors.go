package maps

import (
	"errors"

	"github.com/bpfchan/bpfchan/internal/codec"
	"github.com/bpfchan/bpfchan/internal/mapref"
	"github.com/cilium/ebpf"
)

// Errors returned by this package, wrapped with the operation and the map's
// name. Match them with errors.Is.
var (
	// ErrKeyNotExist: the key is absent (cilium's sentinel; both spellings match).
	ErrKeyNotExist = ebpf.ErrKeyNotExist
	// ErrKeyExist: Insert found the key already present (cilium's sentinel).
	ErrKeyExist = ebpf.ErrKeyExist
	// ErrFull: the map has no room (the kernel says E2BIG, "argument list too
	// long", or for an LPM trie ENOSPC, "no space left on device").
	ErrFull = errors.New("map full")
	// ErrEmpty: a queue or stack has no value to pop or peek.
	ErrEmpty = errors.New("map empty")
	// ErrClosed: the map's descriptor is closed (the wrapper's after its
	// Close, or the caller's before a handle cloned it). Every package of
	// the module reports a closed map with this one sentinel.
	ErrClosed = mapref.ErrClosed
	// ErrInvalid: a validator rejected a value; wraps the validator's error.
	ErrInvalid = errors.New("invalid value")
	// ErrOutOfRange: an array index is not below the array's MaxEntries.
	ErrOutOfRange = errors.New("index out of range")
	// ErrSizeMismatch: a Go type's size differs from the map's key or value
	// size. The message names both sizes.
	ErrSizeMismatch = codec.ErrSize
	// ErrMapType: the map's type does not fit the wrapper asked for (a queue
	// opened as a hash map, a per-CPU map opened as Map, an unknown type).
	// Every package of the module refuses a map of the wrong type with this
	// one sentinel.
	ErrMapType = mapref.ErrMapType
	// ErrInvalidSize: a size parameter the kernel would refuse (a ring
	// buffer size that is no power-of-two multiple of the page size, a key
	// or value size left zero for a type whose size is known only per value).
	ErrInvalidSize = errors.New("invalid size")
	// ErrNilMap: a nil *ebpf.Map or *ebpf.MapSpec was given.
	ErrNilMap = errors.New("nil map")
)
