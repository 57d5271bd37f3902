package pump

import (
	"context"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
)

// reader is what the ring-buffer and perf constructors share: the claimed
// map (the pump's clone), the options, the decoder (and the codec's size,
// -1 for a user decoder), and the map's reader registration, which
// release gives up.
type reader[T any] struct {
	mi      mapInfo
	c       config
	dec     func([]byte, *T) error
	size    int
	release func()
}

// openReader claims m for a reader pump; on error it has released
// everything it took.
func openReader[T any](ctx context.Context, what string, m *ebpf.Map, typ ebpf.MapType, accepted []string, opts []Option) (r reader[T], err error) {
	if r.c, err = newConfig(what, accepted, opts); err != nil {
		return r, err
	}
	if r.mi, err = claim(ctx, what, m, typ); err != nil {
		return r, err
	}
	defer func() {
		if err != nil {
			r.mi.m.Close()
		}
	}()
	if r.dec, r.size, err = decoderFor[T](r.c, r.mi.name); err != nil {
		return r, fmt.Errorf("%s: %s: %w", what, r.mi.name, err)
	}
	r.release, err = claimReader(what, r.mi)
	return r, err
}

// readers is the process-wide registry of the pumps that read ring buffers
// and perf arrays, or write user ring buffers, keyed by map ID. Two readers
// of one ring buffer or perf array split its records unpredictably (two
// ring readers even deliver duplicates: each keeps its own consumer
// position), and two writers of a user ring buffer would reserve the same
// space, so a second pump on the same map is refused with ErrBusy until the
// first has stopped. Several consumers share one C().
var readers struct {
	sync.Mutex
	by map[uint32]string // map ID -> the pump holding it
}

// claimReader registers the pump what as the reader (writer) of mi's map;
// release undoes it. A map without an ID (a kernel too old to report one)
// is not registered.
func claimReader(what string, mi mapInfo) (release func(), err error) {
	if mi.id == 0 {
		return func() {}, nil
	}
	readers.Lock()
	defer readers.Unlock()
	if holder, ok := readers.by[mi.id]; ok {
		return nil, fmt.Errorf("%s: %s is taken by a %s: %w", what, mi.name, holder, ErrBusy)
	}
	if readers.by == nil {
		readers.by = make(map[uint32]string)
	}
	readers.by[mi.id] = what
	var once sync.Once
	return func() {
		once.Do(func() {
			readers.Lock()
			delete(readers.by, mi.id)
			readers.Unlock()
		})
	}, nil
}
