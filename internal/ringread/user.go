package ringread

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// maxUserRecord is the largest payload a BPF program can drain: the kernel
// hands each record to the drain callback as a dynptr, whose size is
// limited to 24 bits (DYNPTR_MAX_SIZE); a larger record makes every later
// bpf_user_ringbuf_drain fail with E2BIG, so the ring would be stuck.
const maxUserRecord = 1<<24 - 1

// Writer writes records into a BPF_MAP_TYPE_USER_RINGBUF through its
// shared memory, for a BPF program to drain with bpf_user_ringbuf_drain.
// It is not safe for concurrent use, except for the methods that say so,
// and a map must have one Writer at a time (two would write the same
// space).
//
// The kernel side (kernel/bpf/ringbuf.c): the map's first page holds the
// consumer position, which the kernel advances as a program drains and
// which user space may map read-only only; the second page holds the
// producer position, followed by the data pages mapped twice in a row, all
// writable by user space. A record is an 8-byte header (the payload's
// length in its first 32 bits, whose top two bits are the busy and discard
// flags; the second 32 bits unused here) and the payload padded to 8
// bytes. __bpf_user_ringbuf_peek loads the producer position with
// smp_load_acquire and reads only records that end at or before it.
//
// So a Writer writes records beyond the producer position, where the kernel
// does not look, and publishes a whole run of them with one 64-bit atomic
// store of the producer position (Commit): the store is a release (Go's
// atomics are sequentially consistent), so the kernel's acquire load sees
// every header and payload before it. No record needs the busy bit: the
// bit is for producers that publish the position when they reserve a
// record, before it is written (libbpf's user_ring_buffer__reserve, which
// clears the bit at submit); a record the kernel finds busy at the consumer
// position stops the drain there. Records never carry the discard bit
// either.
//
// Space: the ring holds size bytes between the consumer position and the
// position after the last record written (committed or not); a record of
// n payload bytes takes RecordSize(n). A record that does not fit an empty
// ring, or whose payload is larger than a dynptr can hold (16 MiB - 1), is
// refused with an error matching unix.E2BIG. Positions are 64-bit atomics
// whatever the process's word size (see Reader); a 32-bit kernel wraps its
// positions at 4 GiB, which a Writer does not follow: there it stops with
// ErrCorrupt after 4 GiB of records.
//
// Nothing is allocated per record.
type Writer struct {
	mapping // the consumer page read-only, the rest read-write

	head      uint64 // the end of the last record written
	committed uint64 // the producer position the kernel sees
}

// OpenUser maps m, a BPF_MAP_TYPE_USER_RINGBUF. Writing starts at the
// producer position the map has (records committed by an earlier Writer
// are the kernel's). The mappings keep the kernel map alive until Close,
// whatever happens to m.
func OpenUser(m *ebpf.Map) (*Writer, error) {
	mp, err := mapRing(m, ebpf.UserRingbuf, unix.PROT_READ, unix.PROT_READ|unix.PROT_WRITE)
	if err != nil {
		return nil, err
	}
	w := &Writer{mapping: mp}
	w.head = atomic.LoadUint64(w.prod)
	w.committed = w.head
	return w, nil
}

// RecordSize is the space a record of n payload bytes takes in the ring:
// the header and the payload, padded to 8 bytes.
func RecordSize(n int) int { return hdrSize + (n+7)&^7 }

// MaxRecord returns the largest payload a record may have: one that fills
// the empty ring, or what a dynptr can hold.
func (w *Writer) MaxRecord() int { return int(min(w.size-hdrSize, maxUserRecord)) }

// Size returns the ring's data size in bytes.
func (w *Writer) Size() int { return int(w.size) }

// Reserve makes room for a record of n payload bytes after the last one
// written, writes its header, and returns its payload, in place in the
// shared memory, for the caller to fill before the next Reserve, Write or
// Commit. ok is false when the ring has no room for it now (nothing is
// written). The record is the kernel's once committed.
func (w *Writer) Reserve(n int) (p []byte, ok bool, err error) {
	if n < 0 || n > w.MaxRecord() {
		return nil, false, fmt.Errorf("a %d-byte record does not fit a %d-byte user ring buffer (at most %d): %w", n, w.size, w.MaxRecord(), unix.E2BIG)
	}
	cons := atomic.LoadUint64(w.cons)
	used := w.head - cons
	if used > w.size {
		return nil, false, fmt.Errorf("%w: the consumer position %d is not within a ring below the producer's %d", ErrCorrupt, cons, w.head)
	}
	total := uint64(RecordSize(n))
	if total > w.size-used {
		return nil, false, nil
	}
	off := w.head & w.mask
	hdr := unsafe.Pointer(&w.data[off])
	*(*uint32)(hdr) = uint32(n)
	*(*uint32)(unsafe.Add(hdr, 4)) = 0
	w.head += total
	start := off + hdrSize
	return w.data[start : start+uint64(n) : start+uint64(n)], true, nil
}

// Write is Reserve and a copy of p into the record.
func (w *Writer) Write(p []byte) (ok bool, err error) {
	dst, ok, err := w.Reserve(len(p))
	if ok {
		copy(dst, p)
	}
	return ok, err
}

// Commit hands every record written so far to the kernel, with one store
// of the producer position, and reports whether there was any.
func (w *Writer) Commit() bool {
	if w.head == w.committed {
		return false
	}
	atomic.StoreUint64(w.prod, w.head)
	w.committed = w.head
	return true
}

// Uncommitted returns how many bytes of records are written but not yet
// committed.
func (w *Writer) Uncommitted() int { return int(w.head - w.committed) }

// Free returns how many bytes the ring has room for now after the records
// written (committed or not).
func (w *Writer) Free() int { return int(w.size - (w.head - atomic.LoadUint64(w.cons))) }

// Need returns the consumer position at which a record of n payload bytes
// fits after the records written so far (see Reached).
func (w *Writer) Need(n int) uint64 { return w.head + uint64(RecordSize(n)) - w.size }

// Reached reports whether the kernel's consumer position is at or past pos
// (compared as a distance, so positions may wrap, as on 32-bit kernels). It
// is safe to call from any goroutine until Close.
func (w *Writer) Reached(pos uint64) bool {
	return int64(atomic.LoadUint64(w.cons)-pos) >= 0
}

// Consumer returns the kernel's consumer position: the end of the last
// record a BPF program drained. It is safe to call from any goroutine until
// Close.
func (w *Writer) Consumer() uint64 { return atomic.LoadUint64(w.cons) }

// Committed returns the producer position the kernel sees.
func (w *Writer) Committed() uint64 { return w.committed }

// Close unmaps the ring without committing: records written since the
// last Commit are abandoned (the next Writer writes over them). The Writer
// must not be used afterwards (its methods then panic).
func (w *Writer) Close() error {
	if !w.mapped() {
		return nil
	}
	return w.unmap()
}
