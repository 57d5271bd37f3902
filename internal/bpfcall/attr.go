package bpfcall

import "unsafe"

// The attributes below are members of the kernel's union bpf_attr
// (include/uapi/linux/bpf.h). Every address is carried as a uint64, the
// kernel's __aligned_u64, so the layout is the same on 32- and 64-bit
// GOARCHes: the compile-time checks at the end of this file fail the build
// on any GOARCH where a size or an offset differs from the kernel's.

// elemAttr is the attribute of BPF_MAP_LOOKUP_ELEM, UPDATE_ELEM,
// DELETE_ELEM, GET_NEXT_KEY and LOOKUP_AND_DELETE_ELEM.
type elemAttr struct {
	mapFD uint32
	_     uint32
	key   uint64
	value uint64 // next_key for GET_NEXT_KEY
	flags uint64
}

// batchAttr is the attribute of the BPF_MAP_*_BATCH commands.
type batchAttr struct {
	inBatch   uint64
	outBatch  uint64
	keys      uint64
	values    uint64
	count     uint32
	mapFD     uint32
	elemFlags uint64
	flags     uint64
}

// testRunAttr is the attribute of BPF_PROG_TEST_RUN (struct test).
type testRunAttr struct {
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

// Sizes and offsets as in the kernel's UAPI header. A constant array length
// that is negative does not compile: each pair below pins one value on
// every GOARCH.
const (
	elemAttrSize    = 32
	batchAttrSize   = 56
	testRunAttrSize = 80
)

var (
	_ [elemAttrSize - unsafe.Sizeof(elemAttr{})]byte
	_ [unsafe.Sizeof(elemAttr{}) - elemAttrSize]byte
	_ [8 - unsafe.Offsetof(elemAttr{}.key)]byte
	_ [unsafe.Offsetof(elemAttr{}.key) - 8]byte
	_ [24 - unsafe.Offsetof(elemAttr{}.flags)]byte
	_ [unsafe.Offsetof(elemAttr{}.flags) - 24]byte

	_ [batchAttrSize - unsafe.Sizeof(batchAttr{})]byte
	_ [unsafe.Sizeof(batchAttr{}) - batchAttrSize]byte
	_ [32 - unsafe.Offsetof(batchAttr{}.count)]byte
	_ [unsafe.Offsetof(batchAttr{}.count) - 32]byte
	_ [40 - unsafe.Offsetof(batchAttr{}.elemFlags)]byte
	_ [unsafe.Offsetof(batchAttr{}.elemFlags) - 40]byte

	_ [testRunAttrSize - unsafe.Sizeof(testRunAttr{})]byte
	_ [unsafe.Sizeof(testRunAttr{}) - testRunAttrSize]byte
	_ [48 - unsafe.Offsetof(testRunAttr{}.ctxIn)]byte
	_ [unsafe.Offsetof(testRunAttr{}.ctxIn) - 48]byte
	_ [72 - unsafe.Offsetof(testRunAttr{}.batchSize)]byte
	_ [unsafe.Offsetof(testRunAttr{}.batchSize) - 72]byte
)

// ptr points at b's first byte, or is nil when b is empty: the kernel
// takes a NULL key for queues and stacks (and refuses any other address
// there with EINVAL).
func ptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.SliceData(b))
}
