//go:build 386 || arm || mipsle

package snapshot

import "unsafe"

// pointer is the kernel's __aligned_u64 holding a user address, as a Go
// pointer the garbage collector sees; the high half is the padding after it.
type pointer struct {
	p unsafe.Pointer
	_ uint32
}
