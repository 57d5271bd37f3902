package pump

import (
	"fmt"
	"sync"
)

// readers is the process-wide registry of ring-buffer and perf pumps, keyed
// by map ID. Two readers of one ring buffer or perf array split its records
// unpredictably (two ring readers even deliver duplicates: each keeps its
// own consumer position), so a second pump on the same map is refused with
// ErrBusy until the first has stopped. Several consumers share one C().
var readers struct {
	sync.Mutex
	by map[uint32]string // map ID -> the pump holding it
}

// claimReader registers the pump what as the reader of mi's map; release
// undoes it. A map without an ID (a kernel too old to report one) is not
// registered.
func claimReader(what string, mi mapInfo) (release func(), err error) {
	if mi.id == 0 {
		return func() {}, nil
	}
	readers.Lock()
	defer readers.Unlock()
	if holder, ok := readers.by[mi.id]; ok {
		return nil, fmt.Errorf("%s: %s already has a reader (a %s): %w", what, mi.name, holder, ErrBusy)
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
