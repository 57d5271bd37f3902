package maps

import (
	"errors"

	"github.com/cilium/ebpf"
)

// Errors returned by this package, wrapped with the operation and the map's
// name. Match them with errors.Is.
var (
	// ErrKeyNotExist: the key is absent (cilium's sentinel; both spellings match).
	ErrKeyNotExist = ebpf.ErrKeyNotExist
	// ErrKeyExist: Insert found the key already present (cilium's sentinel).
	ErrKeyExist = ebpf.ErrKeyExist
	// ErrFull: the map has no room (the kernel says E2BIG, "argument list too long").
	ErrFull = errors.New("map full")
	// ErrEmpty: a queue or stack has no value to pop or peek.
	ErrEmpty = errors.New("map empty")
	// ErrClosed: the wrapper was closed.
	ErrClosed = errors.New("map closed")
	// ErrInvalid: a validator rejected a value; wraps the validator's error.
	ErrInvalid = errors.New("invalid value")
)
