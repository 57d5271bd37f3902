package ringread

import (
	"fmt"
	"os"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// mapping is a ring's memory as the kernel maps it, for a reader (ring
// buffer) and a writer (user ring buffer) alike: the consumer position on
// the first page, the producer position on the second, then the data pages
// mapped twice in a row, so that a record wrapping around the end reads
// and writes as one contiguous slice.
type mapping struct {
	consPage []byte
	prodPage []byte
	cons     *uint64
	prod     *uint64
	data     []byte
	size     uint64
	mask     uint64
}

// mapRing maps m (of type typ) with the consumer page mapped consProt and
// the producer page and data prodProt.
func mapRing(m *ebpf.Map, typ ebpf.MapType, consProt, prodProt int) (mapping, error) {
	if m.Type() != typ {
		return mapping{}, fmt.Errorf("%v: not a %v map", m, typ)
	}
	size := uint64(m.MaxEntries())
	page := os.Getpagesize()
	if size == 0 || size&(size-1) != 0 || size > uint64(maxInt-page)/2 {
		return mapping{}, fmt.Errorf("%v: a %d-byte ring cannot be mapped here", m, size)
	}
	cons, err := unix.Mmap(m.FD(), 0, page, consProt, unix.MAP_SHARED)
	if err != nil {
		return mapping{}, fmt.Errorf("mmap consumer page of %v: %w", m, err)
	}
	prod, err := unix.Mmap(m.FD(), int64(page), page+2*int(size), prodProt, unix.MAP_SHARED)
	if err != nil {
		_ = unix.Munmap(cons)
		return mapping{}, fmt.Errorf("mmap producer pages of %v: %w", m, err)
	}
	mp := layout(cons, prod, page, size)
	mp.consPage, mp.prodPage = cons, prod
	return mp, nil
}

const maxInt = int(^uint(0) >> 1)

// layout lays a ring over memory: the consumer position starts cons, the
// producer position starts prod, and the data of a size-byte ring, twice,
// starts at offset page of prod: the kernel's mappings, or plain memory
// laid out the same way (the parser's fuzz test). Nothing is unmapped.
func layout(cons, prod []byte, page int, size uint64) mapping {
	return mapping{
		cons: (*uint64)(unsafe.Pointer(&cons[0])),
		prod: (*uint64)(unsafe.Pointer(&prod[0])),
		data: prod[page : page+2*int(size)],
		size: size,
		mask: size - 1,
	}
}

// mapped reports whether the mapping is still there.
func (mp *mapping) mapped() bool { return mp.cons != nil }

// unmap releases the kernel's mappings (none for plain memory); the
// mapping must not be used afterwards.
func (mp *mapping) unmap() error {
	var err error
	for _, b := range [][]byte{mp.prodPage, mp.consPage} {
		if b != nil {
			if e := unix.Munmap(b); err == nil {
				err = e
			}
		}
	}
	*mp = mapping{}
	return err
}
