package jetstream

import (
	"errors"

	"github.com/bpfchan/bpfchan/maps"
	"github.com/bpfchan/bpfchan/pump"
)

// Errors returned by this package, wrapped with the operation and the
// subject, consumer, bucket or map concerned; match them with errors.Is.
// They are the core module's sentinels (one per meaning across bpfchan).
// NATS errors are wrapped as they come: a subject no stream captures
// matches jetstream.ErrStreamNotFound, a bucket that does not exist
// jetstream.ErrBucketNotFound.
var (
	// ErrOption: an invalid option, or one the constructor does not take.
	ErrOption = pump.ErrOption
	// ErrPanic: a value's encoding panicked (T's MarshalBinary, or
	// WithEncoder's function), which stops a Publisher or Forwarder; the
	// error carries the panic value. (A Consumer or Mirror counts a
	// decoding that panics as a decode error and goes on.)
	ErrPanic = pump.ErrPanic
	// ErrSize: a Go type's size does not match the map's (both are named).
	ErrSize = maps.ErrSizeMismatch
	// ErrMapType: a nil map, or a map of a type the call does not serve.
	ErrMapType = maps.ErrMapType
	// ErrNilMap: a nil map (it matches ErrMapType too).
	ErrNilMap = maps.ErrNilMap
	// ErrClosed: a map whose descriptor is closed, or a call on a handle
	// that has stopped (Forwarder.Flush).
	ErrClosed = maps.ErrClosed
	// ErrRetention: Forward on a stream whose retention is not Limits
	// (work-queue or interest retention deletes messages Forward must find
	// again when it resumes).
	ErrRetention = errors.New("stream retention is not limits")

	// errStopping (internal): Close came while a Mirror was replacing its
	// watch.
	errStopping = errors.New("stopping")
	// errTooLarge (internal): a value whose message would exceed what the
	// connection or the stream takes.
	errTooLarge = errors.New("larger than a message may be")
)
