package mapref

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/cilium/ebpf"
)

// The module's sentinels for what concerns the map itself, and for an
// option a call refuses; package maps re-exports the map ones, pump, watch
// and jetstream ErrOption.
var (
	// ErrClosed: the map's descriptor is closed (the caller's, before a
	// handle cloned it, or a wrapper's own after its Close).
	ErrClosed = errors.New("map closed")
	// ErrMapType: a nil map, or a map of a type the call does not serve.
	ErrMapType = errors.New("wrong map type")
	// ErrNilMap: a nil *ebpf.Map (or *ebpf.MapSpec) was given. It matches
	// ErrMapType too: a nil map is of no type a call serves, so a check for
	// the wrong map type catches it, and one for ErrNilMap tells it apart.
	ErrNilMap error = nilMap{}
	// ErrOutOfRange: an array index is not below the array's MaxEntries.
	ErrOutOfRange = errors.New("index out of range")
	// ErrOption: an invalid option, or one the call does not take.
	ErrOption = errors.New("invalid option")
)

// nilMap is ErrNilMap: its message is "nil map", and it wraps ErrMapType.
type nilMap struct{}

func (nilMap) Error() string { return "nil map" }
func (nilMap) Unwrap() error { return ErrMapType }

// Ref names a live map: its type, the kernel's name for it and its ID.
type Ref struct {
	Type ebpf.MapType
	Name string // the kernel's name, "" when the map was made without one
	ID   uint32 // 0 when the kernel does not report one
}

// String formats r as every error of the module names a map:
// `Queue map "work" (id 17)`, `Queue map (id 17)` without a name.
func (r Ref) String() string {
	s := r.Type.String() + " map"
	if r.Name != "" {
		s += fmt.Sprintf(" %q", r.Name)
	}
	if r.ID != 0 {
		s += fmt.Sprintf(" (id %d)", r.ID)
	}
	return s
}

// Describe names the live map m. A closed m is an error matching ErrClosed;
// a nil m is ErrNilMap (which matches ErrMapType).
func Describe(m *ebpf.Map) (Ref, error) {
	if m == nil {
		return Ref{}, ErrNilMap
	}
	if m.FD() < 0 {
		return Ref{Type: m.Type()}, fmt.Errorf("%v map: %w", m.Type(), ErrClosed)
	}
	info, err := m.Info()
	if err != nil {
		return Ref{Type: m.Type()}, fmt.Errorf("inspect %v map: %w", m.Type(), Closed(err))
	}
	r := Ref{Type: m.Type(), Name: info.Name}
	if id, ok := info.ID(); ok {
		r.ID = uint32(id)
	}
	return r, nil
}

// Spec names a map that does not exist yet: `Queue map "work"`, or
// `unnamed Queue map`.
func Spec(s *ebpf.MapSpec) string {
	if s.Name != "" {
		return fmt.Sprintf("%v map %q", s.Type, s.Name)
	}
	return fmt.Sprintf("unnamed %v map", s.Type)
}

// Clone returns the clone of m that a handle owns (and closes when it
// stops), and m's name. It fails, starting nothing, on a nil m (ErrNilMap,
// which matches ErrMapType) or a closed one (ErrClosed). Closing m
// afterwards does not disturb the clone.
func Clone(m *ebpf.Map) (*ebpf.Map, Ref, error) {
	r, err := Describe(m)
	if err != nil {
		return nil, r, err
	}
	c, err := m.Clone()
	if err != nil {
		return nil, r, fmt.Errorf("clone %v: %w", r, Closed(err))
	}
	return c, r, nil
}

// Closed marks err with ErrClosed when it reports a closed descriptor
// (EBADF; cilium's "file descriptor in bad state", EBADFD, for a Map whose
// Close was called). Other errors, and nil, are returned as they are.
func Closed(err error) error {
	if err != nil && !errors.Is(err, ErrClosed) &&
		(errors.Is(err, syscall.EBADF) || errors.Is(err, syscall.EBADFD)) {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}
