package bpfcall

import (
	"runtime"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// heapBufs holds the buffers whose addresses the wire test writes into
// attributes as integers: held here, they live on the heap, where they do
// not move.
var heapBufs [][]byte

func heapBuf(n int) []byte {
	b := make([]byte, n)
	heapBufs = append(heapBufs, b)
	return b
}

func addr(b []byte) uint64 { return uint64(uintptr(unsafe.Pointer(&b[0]))) }

func bytesOf[A any](a *A) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(a)), unsafe.Sizeof(*a))
}

// TestWireSize checks the attributes' sizes against the kernel. Passed as
// they are, padded with zeros to a longer size, each is understood; with a
// non-zero byte just past it the kernel refuses the call (EINVAL): the
// command's fields end within the attribute, so no field the kernel reads
// is left out of it. (The compile-time checks in attr.go pin the same sizes
// and offsets on every GOARCH.)
func TestWireSize(t *testing.T) {
	q := newMap(t, ebpf.Queue, 0, 8, 1)
	h := newMap(t, ebpf.Hash, 4, 8, 1)
	p := newEchoProg(t)
	key, val, cursor, ctx := heapBuf(4), heapBuf(8), heapBuf(4), heapBuf(16)
	qfd, hfd := uint32(q.FD()), uint32(h.FD())
	for _, tc := range []struct {
		name string
		cmd  uintptr
		attr []byte
		want unix.Errno // the answer with zeros after the attribute
	}{
		{"pop", unix.BPF_MAP_LOOKUP_AND_DELETE_ELEM, bytesOf(&elemAttr{mapFD: qfd, value: addr(val)}), unix.ENOENT},
		{"peek", unix.BPF_MAP_LOOKUP_ELEM, bytesOf(&elemAttr{mapFD: qfd, value: addr(val)}), unix.ENOENT},
		{"lookup", unix.BPF_MAP_LOOKUP_ELEM, bytesOf(&elemAttr{mapFD: hfd, key: addr(key), value: addr(val)}), unix.ENOENT},
		{"update", unix.BPF_MAP_UPDATE_ELEM, bytesOf(&elemAttr{mapFD: hfd, key: addr(key), value: addr(val), flags: unix.BPF_EXIST}), unix.ENOENT},
		{"delete", unix.BPF_MAP_DELETE_ELEM, bytesOf(&elemAttr{mapFD: hfd, key: addr(key)}), unix.ENOENT},
		{"next key", unix.BPF_MAP_GET_NEXT_KEY, bytesOf(&elemAttr{mapFD: hfd, value: addr(key)}), unix.ENOENT},
		{"lookup batch", unix.BPF_MAP_LOOKUP_BATCH, bytesOf(&batchAttr{outBatch: addr(cursor), keys: addr(key), values: addr(val), count: 1, mapFD: hfd}), unix.ENOENT},
		{"test run", unix.BPF_PROG_TEST_RUN, bytesOf(&testRunAttr{progFD: uint32(p.FD()), ctxSizeIn: 16, ctxIn: addr(ctx)}), 0},
	} {
		buf := make([]byte, len(tc.attr)+8)
		copy(buf, tc.attr)
		if got := call(tc.cmd, buf); got != tc.want {
			t.Errorf("%s, %d bytes then zeros: got %v, want %v", tc.name, len(tc.attr), got, tc.want)
		}
		buf[len(tc.attr)] = 1
		if got := call(tc.cmd, buf); got != unix.EINVAL {
			t.Errorf("%s, a byte set at offset %d: got %v, want EINVAL", tc.name, len(tc.attr), got)
		}
	}
	runtime.KeepAlive(heapBufs)
}

func call(cmd uintptr, attr []byte) unix.Errno {
	_, _, e := unix.Syscall(unix.SYS_BPF, cmd, uintptr(unsafe.Pointer(&attr[0])), uintptr(len(attr)))
	return e
}
