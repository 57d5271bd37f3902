package kernatomic

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// progRunAttr is the BPF_PROG_TEST_RUN member of union bpf_attr
// (include/uapi/linux/bpf.h, struct test).
type progRunAttr struct {
	progFD      uint32
	retval      uint32
	dataSizeIn  uint32
	dataSizeOut uint32
	dataIn      uint64
	dataOut     uint64
	repeat      uint32
	duration    uint32
	ctxSizeIn   uint32
	ctxSizeOut  uint32
	ctxIn       uint64
	ctxOut      uint64
	flags       uint32
	cpu         uint32
	batchSize   uint32
	_           uint32
}

// testRun runs the syscall program fd once with ctx as its context, which
// the kernel copies back into ctx afterwards, and returns the program's
// return value.
//
// This is BPF_PROG_TEST_RUN without cilium's Program.Run: that one
// serialises the context with encoding/binary into fresh buffers (5
// allocations, about 700 ns per call here, more than the syscall itself),
// which would make one atomic op slower than the racy Lookup+Put pair it
// replaces. ctx must be heap memory (it is passed to the kernel by address).
func testRun(fd int, ctx []byte) (uint32, error) {
	attr := progRunAttr{
		progFD:    uint32(fd),
		ctxSizeIn: uint32(len(ctx)),
		ctxIn:     uint64(uintptr(unsafe.Pointer(unsafe.SliceData(ctx)))),
	}
	_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_TEST_RUN, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(ctx)
	if errno != 0 {
		// No EINTR to retry: a syscall program runs once, with no repeat
		// loop that checks for signals.
		return 0, errno
	}
	return attr.retval, nil
}
