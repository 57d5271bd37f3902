package pump

import (
	"errors"

	"github.com/bpfchan/bpfchan/internal/codec"
	"github.com/bpfchan/bpfchan/internal/mapref"
	"github.com/bpfchan/bpfchan/maps"
)

// Errors returned by this package, wrapped with the operation and the map's
// name and type. Match them with errors.Is. A full map is maps.ErrFull, an
// empty one maps.ErrEmpty, a map closed under a running pump
// maps.ErrClosed, and a nil map maps.ErrNilMap (which matches ErrMapType
// too).
var (
	// ErrMapType: a nil map, or a map of the wrong type for the pump. It is
	// maps.ErrMapType.
	ErrMapType = maps.ErrMapType
	// ErrSize: the Go type's size does not match the map's (both are named).
	ErrSize = codec.ErrSize
	// ErrOption: an invalid option, or one the constructor does not take.
	// It is the module's one ErrOption (watch.ErrOption and
	// jetstream.ErrOption are this value).
	ErrOption = mapref.ErrOption
	// ErrPanic: a user decoder or encoder panicked; the error carries the
	// panic value.
	ErrPanic = codec.ErrPanic
	// ErrBusy: the ring buffer or perf array already has a pump reading it
	// in this process (two readers would split or duplicate its records;
	// share the first pump's C() instead), or the user ring buffer already
	// has a writer (two would reserve the same space).
	ErrBusy = errors.New("map already has a pump")
)

var errClosed = maps.ErrClosed
