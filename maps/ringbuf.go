package maps

import (
	"fmt"
	"os"

	"github.com/cilium/ebpf"
)

// NewRingBuf creates a ring buffer of size bytes, which must be a power of
// two and a multiple of the page size. Read it with package pump.
func NewRingBuf(size int) (*ebpf.Map, error) {
	page := os.Getpagesize()
	if size <= 0 || size&(size-1) != 0 || size%page != 0 || size > 1<<31 {
		return nil, fmt.Errorf("create ring buffer map: size %d is not a power of two multiple of the %d-byte page: %w", size, page, ErrInvalidSize)
	}
	return create(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: uint32(size)})
}
