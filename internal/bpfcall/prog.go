package bpfcall

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestRun runs the program fd once with ctx as its context
// (BPF_PROG_TEST_RUN with ctx_in only) and returns the program's return
// value. A BPF_PROG_TYPE_SYSCALL program's context is copied back into ctx
// afterwards, so the program can answer through it.
//
// It is meant for syscall programs: it passes no packet data and no repeat
// count, so the kernel runs the program once and there is no EINTR to
// retry.
func TestRun(fd int, ctx []byte) (uint32, unix.Errno) {
	p := ptr(ctx)
	attr := testRunAttr{
		progFD:    uint32(fd),
		ctxSizeIn: uint32(len(ctx)),
		ctxIn:     uint64(uintptr(p)),
	}
	_, _, e := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_TEST_RUN, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(p)
	return attr.retval, e
}
