package maps

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/bpfchan/bpfchan/internal/codec"
	"github.com/cilium/ebpf"
)

// life guards a wrapper's file descriptor against Close. Every kernel call
// holds the read lock, Close takes the write lock, so an operation racing
// with Close either completes on the live fd or reports ErrClosed; it never
// reaches a closed (or reused) descriptor number.
type life struct {
	mu     sync.RWMutex
	closed atomic.Bool
}

// acquire takes the read lock; on success the caller must call release.
func (l *life) acquire() bool {
	l.mu.RLock()
	if l.closed.Load() {
		l.mu.RUnlock()
		return false
	}
	return true
}

func (l *life) release() { l.mu.RUnlock() }

// shut closes m once; later calls return nil and do nothing.
func (l *life) shut(m *ebpf.Map) (first bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Swap(true) {
		return false, nil
	}
	return true, m.Close()
}

// opErr wraps err as "op name: err".
func opErr(op, name string, err error) error {
	return fmt.Errorf("%s %s: %w", op, name, err)
}

// describe names a live map for errors: `hash map "counts"`, or
// `hash map id 12` when it has no name.
func describe(m *ebpf.Map) string {
	kind := typeName(m.Type())
	info, err := m.Info()
	if err != nil {
		return fmt.Sprintf("%s map fd %d", kind, m.FD())
	}
	if info.Name != "" {
		return fmt.Sprintf("%s map %q", kind, info.Name)
	}
	if id, ok := info.ID(); ok {
		return fmt.Sprintf("%s map id %d", kind, id)
	}
	return fmt.Sprintf("%s map fd %d", kind, m.FD())
}

// describeSpec names a map that does not exist yet.
func describeSpec(s *ebpf.MapSpec) string {
	if s.Name != "" {
		return fmt.Sprintf("%s map %q", typeName(s.Type), s.Name)
	}
	return fmt.Sprintf("unnamed %s map", typeName(s.Type))
}

// clone duplicates m for a wrapper that owns its own descriptor.
func clone(m *ebpf.Map) (*ebpf.Map, error) {
	if m == nil {
		return nil, fmt.Errorf("open map: %w", ErrNilMap)
	}
	if m.FD() < 0 {
		return nil, fmt.Errorf("open %s map: %w", typeName(m.Type()), ErrClosed)
	}
	c, err := m.Clone()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", describe(m), err)
	}
	return c, nil
}

// create makes the kernel map for spec; the error names the spec's map.
func create(spec *ebpf.MapSpec) (*ebpf.Map, error) {
	m, err := ebpf.NewMap(spec)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", describeSpec(spec), err)
	}
	return m, nil
}

// createFixed creates the map of spec, whose keys (what is "key") or values
// ("value") are T's, after setting *size (the spec's KeySize or ValueSize)
// to T's size. T must have a fixed size; open names the function that wraps
// a map of a variable-size T made with ebpf.NewMap.
func createFixed[T any](spec *ebpf.MapSpec, size *uint32, what, open string) (*ebpf.Map, error) {
	c, err := codec.For[T]()
	if err != nil {
		return nil, fmt.Errorf("create %s: %s: %w", describeSpec(spec), what, err)
	}
	if c.Size() < 0 {
		return nil, fmt.Errorf("create %s: %s type %s has no fixed size: use ebpf.NewMap and %s", describeSpec(spec), what, c, open)
	}
	*size = uint32(c.Size())
	return create(spec)
}
