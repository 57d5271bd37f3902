package maps

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/cilium/ebpf"
)

// Pin makes the map outlive this process at path, which must be on a bpf
// filesystem (usually under /sys/fs/bpf) and not taken yet.
func (m *Map[K, V]) Pin(path string) error {
	if !m.lf.acquire() {
		return opErr("pin", m.name, ErrClosed)
	}
	defer m.lf.release()
	m.pinMu.Lock()
	defer m.pinMu.Unlock()
	return pinErr(m.name, path, m.m.Pin(path))
}

// Unpin removes the pin this Map made with Pin, or the one LoadPinned
// opened it from; a Map made by Open of a pinned *ebpf.Map has no pin of its
// own (it wraps a clone): unpin through the original. Unpin of a Map without
// a pin does nothing.
func (m *Map[K, V]) Unpin() error {
	if !m.lf.acquire() {
		return opErr("unpin", m.name, ErrClosed)
	}
	defer m.lf.release()
	m.pinMu.Lock()
	defer m.pinMu.Unlock()
	if err := m.m.Unpin(); err != nil {
		return opErr("unpin", m.name, err)
	}
	return nil
}

func pinErr(name, path string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("pin %s at %s: path already taken: %w", name, path, err)
	}
	return fmt.Errorf("pin %s at %s: %w", name, path, err)
}

// LoadPinned opens the map pinned at path as a Map, checking the sizes of
// K and V against it. The returned Map owns the new descriptor, and its
// Unpin removes the pin.
func LoadPinned[K, V any](path string) (*Map[K, V], error) {
	em, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		return nil, fmt.Errorf("load pinned map %s: %w", path, err)
	}
	return adopt[K, V](em)
}
