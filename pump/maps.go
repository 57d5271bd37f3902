package pump

import (
	"context"
	"fmt"
	"reflect"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/mapref"
	"github.com/bpfchan/bpfchan/maps"
)

// mapInfo is what a pump knows about its map: its clone, which the pump
// owns and closes when it stops (DESIGN rule 1), how to name it in errors,
// and its kernel ID (which keys the same-process wake-ups and the reader
// registry).
type mapInfo struct {
	m    *ebpf.Map // the pump's own clone of the caller's map
	name string    // e.g. `RingBuf map "events" (id 12)`
	id   uint32
}

// claim validates the arguments every constructor shares (a live ctx, a
// live map of one of the wanted types) and takes the pump's clone of m.
// The caller closes mi.m when a later check fails.
func claim(ctx context.Context, what string, m *ebpf.Map, want ...ebpf.MapType) (mapInfo, error) {
	if err := context.Cause(ctx); err != nil {
		return mapInfo{}, fmt.Errorf("%s: %w", what, err)
	}
	if m == nil {
		return mapInfo{}, fmt.Errorf("%s: %w, want a %v map", what, maps.ErrNilMap, want[0])
	}
	ref, err := mapref.Describe(m)
	if err != nil {
		return mapInfo{}, fmt.Errorf("%s: %w", what, err)
	}
	if !typeIn(m.Type(), want) {
		return mapInfo{}, fmt.Errorf("%s: %v: want a %v map: %w", what, ref, want[0], ErrMapType)
	}
	c, err := m.Clone()
	if err != nil {
		return mapInfo{}, fmt.Errorf("%s: clone %v: %w", what, ref, mapref.Closed(err))
	}
	return mapInfo{m: c, name: ref.String(), id: ref.ID}, nil
}

func typeIn(t ebpf.MapType, want []ebpf.MapType) bool {
	for _, w := range want {
		if t == w {
			return true
		}
	}
	return false
}

// closedErr marks the errors of a closed map descriptor with maps.ErrClosed.
func closedErr(err error) error { return mapref.Closed(err) }

// errWrongFunc is the ErrOption error of a WithDecoder or WithEncoder
// function of the wrong type.
func errWrongFunc[E any](what, opt string, f any) error {
	return fmt.Errorf("%s: %s given a %T, this pump's values are %v: %w", what, opt, f, reflect.TypeFor[E](), ErrOption)
}
