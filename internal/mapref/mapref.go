package mapref

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/cilium/ebpf"
)

// The module's sentinels for what concerns the map itself; package maps
// re-exports them.
var (
	// ErrClosed: the map's descriptor is closed (the caller's, before a
	// handle cloned it, or a wrapper's own after its Close).
	ErrClosed = errors.New("map closed")
	// ErrMapType: a nil map, or a map of a type the call does not serve.
	ErrMapType = errors.New("wrong map type")
)

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
// a nil m one matching ErrMapType.
func Describe(m *ebpf.Map) (Ref, error) {
	if m == nil {
		return Ref{}, fmt.Errorf("nil map: %w", ErrMapType)
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
// stops), and m's name. It fails, starting nothing, on a nil m (ErrMapType)
// or a closed one (ErrClosed). Closing m afterwards does not disturb the
// clone.
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
