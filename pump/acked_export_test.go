package pump

import (
	"context"
	"time"

	"github.com/cilium/ebpf"
)

// RingBufAckedFirstLook is RingBufAcked whose pump, once parked, first
// looks at the ring by itself after first (RingBufAcked: ackedFirstLook).
// With an hour, and WithDrainInterval(time.Hour), only an Ack or the
// kernel's wake-up can make the pump look.
func RingBufAckedFirstLook[T any](ctx context.Context, m *ebpf.Map, first time.Duration, opts ...Option) (*AckSource[T], error) {
	return ringBufAcked[T](ctx, m, first, opts)
}
