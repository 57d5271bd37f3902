package maps

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/mapref"
)

// handle is what every wrapper holds: the map's descriptor (owned by the
// wrapper), its name for errors, and the guard against Close. Wrappers embed
// it, which gives them Map, Pin and Unpin, and m, name and lf as fields.
type handle struct {
	m     *ebpf.Map
	name  string
	lf    life
	pinMu sync.Mutex // cilium's Map keeps its pin path unguarded
}

// own makes h the owner of em once the checks passed: the first non-nil
// error of errs (the type check, the size checks) closes em and is returned,
// naming the map.
func (h *handle) own(em *ebpf.Map, errs ...error) error {
	// em is open (just made, cloned or loaded): a failure to describe it
	// leaves its type, which still names it.
	r, _ := mapref.Describe(em)
	name := r.String()
	for _, err := range errs {
		if err != nil {
			em.Close()
			return fmt.Errorf("open %s: %w", name, err)
		}
	}
	h.m, h.name = em, name
	return nil
}

// do runs the kernel call f on the open map, and wraps its error with op
// and the map's name, translated by kernelErr. After Close it returns
// ErrClosed without calling f.
func (h *handle) do(op string, f func() error) error {
	if !h.lf.acquire() {
		return opErr(op, h.name, ErrClosed)
	}
	err := f()
	h.lf.release()
	if err != nil {
		return opErr(op, h.name, kernelErr(h.m.Type(), err))
	}
	return nil
}

// fail wraps a non-nil err with op and the map's name.
func (h *handle) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	return opErr(op, h.name, err)
}

// close closes the map once; first is false for the later calls, which do
// nothing.
func (h *handle) close() (first bool, err error) { return h.lf.shut(h.m) }

// Map returns the underlying map, owned by the wrapper: do not close it,
// and do not use it after the wrapper's Close.
func (h *handle) Map() *ebpf.Map { return h.m }

// Pin makes the map outlive this process at path, which must be on a bpf
// filesystem (usually under /sys/fs/bpf) and not taken yet. Pinning a map
// that has a pin already moves the pin.
func (h *handle) Pin(path string) error {
	if !h.lf.acquire() {
		return opErr("pin", h.name, ErrClosed)
	}
	defer h.lf.release()
	h.pinMu.Lock()
	defer h.pinMu.Unlock()
	err := h.m.Pin(path)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("pin %s at %s: path already taken: %w", h.name, path, err)
	}
	return fmt.Errorf("pin %s at %s: %w", h.name, path, err)
}

// Unpin removes the pin the wrapper made with Pin, or the one a LoadPinned
// function opened it from. A wrapper made by an Open function wraps a clone,
// which has no pin of its own even when the original has: unpin through the
// original. Unpin of a wrapper without a pin does nothing.
func (h *handle) Unpin() error {
	if !h.lf.acquire() {
		return opErr("unpin", h.name, ErrClosed)
	}
	defer h.lf.release()
	h.pinMu.Lock()
	defer h.pinMu.Unlock()
	return h.fail("unpin", h.m.Unpin())
}

// openClone wraps a clone of m (the caller keeps its own m) with adopt,
// which checks and takes over the clone. A nil m is ErrNilMap (which
// matches ErrMapType), a closed one ErrClosed.
func openClone[W any](m *ebpf.Map, adopt func(*ebpf.Map) (W, error)) (W, error) {
	var zero W
	c, _, err := mapref.Clone(m)
	if err != nil {
		return zero, fmt.Errorf("open map: %w", err)
	}
	return adopt(c)
}

// loadPinned wraps the map pinned at path with adopt; the wrapper owns the
// pin's new descriptor, so its Unpin removes the pin.
func loadPinned[W any](path string, adopt func(*ebpf.Map) (W, error)) (W, error) {
	em, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		var zero W
		return zero, fmt.Errorf("load pinned map %s: %w", path, err)
	}
	return adopt(em)
}

// wantType is nil when t is one of types, else an ErrMapType error naming
// them as cilium does ("not a Queue map").
func wantType(t ebpf.MapType, types ...ebpf.MapType) error {
	for _, w := range types {
		if t == w {
			return nil
		}
	}
	names := make([]string, len(types))
	for i, w := range types {
		names[i] = w.String()
	}
	return fmt.Errorf("not a %s map: %w", joinOr(names), ErrMapType)
}

// joinOr joins names as "a, b or c".
func joinOr(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
