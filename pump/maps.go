package pump

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"syscall"

	"github.com/cilium/ebpf"
)

// mapInfo is what a pump knows about its map: how to name it in errors and
// its kernel ID (which keys the same-process wake-ups).
type mapInfo struct {
	name string // e.g. `RingBuf map "events" (id 12)`
	id   uint32
}

// check validates the arguments every constructor shares: a live ctx and a
// map of one of the wanted types.
func check(ctx context.Context, what string, m *ebpf.Map, want ...ebpf.MapType) (mapInfo, error) {
	if err := context.Cause(ctx); err != nil {
		return mapInfo{}, fmt.Errorf("%s: %w", what, err)
	}
	if m == nil {
		return mapInfo{}, fmt.Errorf("%s: nil map, want %v: %w", what, want[0], ErrMapType)
	}
	info, err := m.Info()
	if err != nil {
		return mapInfo{}, fmt.Errorf("%s: inspect %v map: %w", what, m.Type(), closedErr(err))
	}
	mi := mapInfo{name: fmt.Sprintf("%v map %q", m.Type(), info.Name)}
	if id, ok := info.ID(); ok {
		mi.id = uint32(id)
		mi.name = fmt.Sprintf("%v map %q (id %d)", m.Type(), info.Name, id)
	}
	for _, t := range want {
		if m.Type() == t {
			return mi, nil
		}
	}
	return mi, fmt.Errorf("%s: %s: want a %v map: %w", what, mi.name, want[0], ErrMapType)
}

// closedErr marks the errors of a closed map descriptor with maps.ErrClosed.
func closedErr(err error) error {
	if errors.Is(err, syscall.EBADF) {
		return fmt.Errorf("%w: %w", errClosed, err)
	}
	return err
}

func errWrongFunc[E any](what, opt string, f any) error {
	return fmt.Errorf("%s: %s given a %T, this pump's values are %v", what, opt, f, reflect.TypeFor[E]())
}
