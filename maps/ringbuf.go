package maps

import (
	"fmt"
	"os"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/mapref"
)

// maxRing is the largest ring size: a power of two that fits MaxEntries
// (uint32).
const maxRing = 1 << 31

// NewRingBuf creates a ring buffer (BPF_MAP_TYPE_RINGBUF) of size bytes,
// which BPF programs write and package pump reads. size must be a power of
// two and a multiple of the page size, at most 2 GiB; another size is
// refused with an error naming it and matching ErrInvalidSize.
func NewRingBuf(size int, opts ...MapOption) (*ebpf.Map, error) {
	return newRing(ebpf.RingBuf, size, opts)
}

// NewUserRingBuf creates a user ring buffer (BPF_MAP_TYPE_USER_RINGBUF) of
// size bytes, which this process writes (package pump's UserRingBuf) and a
// BPF program drains with bpf_user_ringbuf_drain. size is checked as
// NewRingBuf checks it.
func NewUserRingBuf(size int, opts ...MapOption) (*ebpf.Map, error) {
	return newRing(ebpf.UserRingbuf, size, opts)
}

// newRing creates a ring of type typ and size bytes.
func newRing(typ ebpf.MapType, size int, opts []MapOption) (*ebpf.Map, error) {
	spec := specOf(typ, 0, opts)
	if err := ringSize(size); err != nil {
		return nil, fmt.Errorf("create %s: %w", mapref.Spec(spec), err)
	}
	spec.MaxEntries = uint32(size)
	return create(spec)
}

// ringSize refuses a ring size the kernel would refuse.
func ringSize(size int) error {
	page := os.Getpagesize()
	switch {
	case size <= 0 || size&(size-1) != 0 || size%page != 0:
		return fmt.Errorf("size %d is not a power of two multiple of the %d-byte page: %w", size, page, ErrInvalidSize)
	case int64(size) > maxRing:
		return fmt.Errorf("size %d is more than %d: %w", size, int64(maxRing), ErrInvalidSize)
	}
	return nil
}
