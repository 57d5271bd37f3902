package snapshot

import "unsafe"

// pointer is the kernel's __aligned_u64 holding a user address, as a Go
// pointer the garbage collector sees; the high half is the padding before it.
type pointer struct {
	_ uint32
	p unsafe.Pointer
}
