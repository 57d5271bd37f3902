// Package ringread consumes a BPF ring buffer map through its shared
// memory, without cilium/ebpf's ringbuf.Reader.
//
// cilium's reader is built for a goroutine that blocks in it: every
// ReadInto takes a mutex, copies the record into the caller's buffer, and
// when the ring is empty makes an epoll_wait syscall (with a deadline in the
// past, to return at once). A pump reads records only to decode them into
// its own slots and waits in Go's netpoller instead, so this Reader hands
// out each payload in place (valid until the next call), tells an empty
// ring from a load of two positions, and publishes the consumer position
// once per run of records instead of once per record, and not at all while
// it lingers for the next record (Linger).
//
// The kernel side of the protocol (kernel/bpf/ringbuf.c): the first page of
// the map is the consumer position, written by us; the second the producer
// position, and after it the data pages, mapped twice in a row so that a
// record wrapping around the end reads as one contiguous slice. Each record
// starts with an 8-byte header whose length word carries a busy bit
// (reserved, not yet committed) and a discard bit; records are padded to 8
// bytes. A producer wakes the consumer only for a record written exactly at
// the published consumer position, so the position must be published before
// a consumer that found the ring empty goes to sleep.
package ringread

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

const (
	hdrSize    = 8
	busyBit    = 1 << 31
	discardBit = 1 << 30
	lenMask    = ^uint32(busyBit | discardBit)
)

// ErrCorrupt reports positions or a header that cannot come from the
// kernel: a record longer than what the producer says is there.
var ErrCorrupt = errors.New("ring buffer positions inconsistent")

// Reader reads one ring buffer map. It is not safe for concurrent use.
type Reader struct {
	consPage []byte // RW: the consumer position
	prodPage []byte // RO: the producer position, then the data twice
	cons     *uintptr
	prod     *uintptr
	data     []byte
	mask     uintptr

	pos       uintptr // our consumer position, maybe not yet published
	published uintptr // the consumer position the kernel sees
	unpub     int     // records read since the last publish
}

// PublishEvery is how many records a Reader reads before it publishes its
// position even though the ring is not yet empty, so that a producer gets
// the space back while a long run is read.
const PublishEvery = 64

// Open maps m, a BPF_MAP_TYPE_RINGBUF. The mappings keep the kernel map
// alive until Close, whatever happens to m.
func Open(m *ebpf.Map) (*Reader, error) {
	if m.Type() != ebpf.RingBuf {
		return nil, fmt.Errorf("%v: not a ring buffer", m)
	}
	size := int(m.MaxEntries())
	page := os.Getpagesize()
	cons, err := unix.Mmap(m.FD(), 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap consumer page of %v: %w", m, err)
	}
	prod, err := unix.Mmap(m.FD(), int64(page), page+2*size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		_ = unix.Munmap(cons)
		return nil, fmt.Errorf("mmap producer pages of %v: %w", m, err)
	}
	r := &Reader{
		consPage: cons,
		prodPage: prod,
		cons:     (*uintptr)(unsafe.Pointer(&cons[0])),
		prod:     (*uintptr)(unsafe.Pointer(&prod[0])),
		data:     prod[page:],
		mask:     uintptr(size - 1),
	}
	r.pos = atomic.LoadUintptr(r.cons)
	r.published = r.pos
	return r, nil
}

// Available returns how many bytes of records (headers and padding
// included) the ring holds beyond what this Reader has read.
func (r *Reader) Available() int {
	return int(atomic.LoadUintptr(r.prod) - r.pos)
}

// Next returns the payload of the next committed record, in place: the
// bytes are valid until the next call to Next or Publish, after which the
// producer may overwrite them. ok is false when the ring holds no record.
// Next publishes the position itself only every PublishEvery records; a
// caller that found the ring empty must Publish before it waits for a
// wake-up (see Linger). Discarded records are skipped; a record still
// being written (busy) is waited for, as the producer commits it within
// its program's run.
func (r *Reader) Next() (rec []byte, ok bool, err error) {
	if r.unpub >= PublishEvery {
		r.Publish()
	}
	spins := 0
	for {
		prod := atomic.LoadUintptr(r.prod)
		if prod == r.pos {
			return nil, false, nil
		}
		if prod-r.pos < hdrSize {
			return nil, false, fmt.Errorf("%w: %d bytes left, less than a header", ErrCorrupt, prod-r.pos)
		}
		off := r.pos & r.mask
		hdr := atomic.LoadUint32((*uint32)(unsafe.Pointer(&r.data[off])))
		if hdr&busyBit != 0 {
			if spins++; spins%64 == 0 {
				runtime.Gosched()
			}
			continue
		}
		n := uintptr(hdr & lenMask)
		padded := (n + 7) &^ 7
		if prod-r.pos-hdrSize < padded {
			return nil, false, fmt.Errorf("%w: a %d-byte record, %d bytes left", ErrCorrupt, n, prod-r.pos-hdrSize)
		}
		start := off + hdrSize
		r.pos += hdrSize + padded
		r.unpub++
		if hdr&discardBit != 0 {
			continue
		}
		return r.data[start : start+n : start+n], true, nil
	}
}

// LingerYields is how many times Linger yields the processor while it
// waits for a record.
const LingerYields = 16

// Linger yields the processor a few times (LingerYields), watching for a
// record, and reports whether one came. A consumer that found the ring
// empty calls it before it publishes its position and sleeps: while the
// position is unpublished the producer sends no wake-up, and a producer
// that is still writing has usually written the next record by then. A
// consumer that keeps up with a live producer would otherwise catch up
// after nearly every record, and every record written at a published
// position costs the producer a wake-up (an irq_work, expensive under
// virtualisation) and the consumer a trip through the scheduler. With
// nothing else to run, a yield costs well under a microsecond.
func (r *Reader) Linger() bool {
	for range LingerYields {
		runtime.Gosched()
		if atomic.LoadUintptr(r.prod) != r.pos {
			return true
		}
	}
	return false
}

// Publish tells the kernel that everything read so far is consumed.
func (r *Reader) Publish() {
	r.unpub = 0
	if r.pos != r.published {
		atomic.StoreUintptr(r.cons, r.pos)
		r.published = r.pos
	}
}

// Close publishes what was read and unmaps the ring.
func (r *Reader) Close() error {
	if r.consPage == nil {
		return nil
	}
	r.Publish()
	err := errors.Join(unix.Munmap(r.prodPage), unix.Munmap(r.consPage))
	r.consPage, r.prodPage, r.data = nil, nil, nil
	return err
}
