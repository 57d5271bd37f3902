package maps

import (
	"errors"
	"fmt"
	"strings"

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
	// Every package of the module reports such an index with this one
	// sentinel.
	ErrOutOfRange = mapref.ErrOutOfRange
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
	// or value size left zero for a type whose size is known only per value,
	// a bloom filter's number of hash functions).
	ErrInvalidSize = errors.New("invalid size")
	// ErrInvalidName: a map name the kernel would refuse or cut (WithName,
	// or the Name of a spec given to New): more than 15 characters, or one
	// outside A-Z, a-z, 0-9, _ and the dot.
	ErrInvalidName = errors.New("invalid map name")
	// ErrNilMap: a nil *ebpf.Map or *ebpf.MapSpec was given. It matches
	// ErrMapType too (a nil map is of no type a call serves); every package
	// of the module refuses a nil map with this one sentinel.
	ErrNilMap = mapref.ErrNilMap
)

// opErr wraps err as "op name: err", name being the map's (mapref's
// Ref.String).
func opErr(op, name string, err error) error {
	return fmt.Errorf("%s %s: %w", op, name, err)
}

// joinLine is errors.Join on one line: the messages of the non-nil errs
// separated by "; ", each of them matched by errors.Is. It returns nil when
// all are nil, and a lone error as it is.
func joinLine(errs ...error) error {
	var kept lineErrs
	for _, err := range errs {
		if err != nil {
			kept = append(kept, err)
		}
	}
	switch len(kept) {
	case 0:
		return nil
	case 1:
		return kept[0]
	}
	return kept
}

type lineErrs []error

func (l lineErrs) Error() string {
	msgs := make([]string, len(l))
	for i, err := range l {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (l lineErrs) Unwrap() []error { return l }
