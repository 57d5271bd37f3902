//go:build !386 && !arm && !mips && !mipsle

package snapshot

import "unsafe"

// pointer is the kernel's __aligned_u64 holding a user address, as a Go
// pointer the garbage collector sees.
type pointer struct{ p unsafe.Pointer }
