// Package ringread consumes a BPF ring buffer map through its shared
// memory, without cilium/ebpf's ringbuf.Reader.
//
// cilium's reader is built for a goroutine that blocks in it: every
// ReadInto takes a mutex, copies the record into the caller's buffer, and
// when the ring is empty makes an epoll_wait syscall (with a deadline in the
// past, to return at once). A pump reads records only to decode them into
// its own slots and waits in Go's netpoller instead, so this Reader hands
// out each payload in place (valid until the next call), tells an empty
// ring from one load of the producer position, and does not publish that
// it caught up while it lingers for the next record (Linger).
//
// The kernel side of the protocol (kernel/bpf/ringbuf.c): the first page of
// the map is the consumer position, written by us; the second the producer
// position, and after it the data pages, mapped twice in a row so that a
// record wrapping around the end reads as one contiguous slice. Each record
// starts with an 8-byte header whose length word carries a busy bit
// (reserved, not yet committed) and a discard bit; records are padded to 8
// bytes. When it commits a record, a producer wakes the consumer only if
// the record starts at the published consumer position (compared modulo the
// ring size), unless it passed BPF_RB_FORCE_WAKEUP (always) or
// BPF_RB_NO_WAKEUP (never); so the position must be published before a
// consumer that found the ring empty goes to sleep.
package ringread

import (
	"errors"
	"fmt"
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
// kernel's ring protocol: a record longer than the ring or than what the
// producer says is there, a producer more than a ring ahead.
var ErrCorrupt = errors.New("ring buffer positions inconsistent")

// busySpins is how many times Next looks again at a record that is
// reserved but not yet committed before it reports the ring empty. Most
// producers commit soon after they reserve, but nothing bounds the time in
// between (a program may loop, or sleep if it is sleepable, or be
// preempted): then the caller waits like for an empty ring, and the commit
// wakes it (the record sits at the published position), unless it is
// submitted with BPF_RB_NO_WAKEUP.
const busySpins = 256

// Reader reads one ring buffer map. It is not safe for concurrent use,
// except for the methods that say so.
//
// Positions are the kernel's unsigned longs, loaded and stored as 64-bit
// atomics whatever the process's word size: a 32-bit process on a 64-bit
// kernel sees them exactly (a 32-bit kernel wraps them at 4 GiB, and the
// high half this package reads is the page's zero padding there).
type Reader struct {
	mapping // the consumer page read-write, the rest read-only

	pos       uint64 // our consumer position: the end of the last record read
	at        uint64 // the start of the last record read
	published uint64 // the consumer position the kernel sees (automatic publishing)
	manual    bool   // the owner publishes (SetConsumer); reading publishes nothing
}

// Open maps m, a BPF_MAP_TYPE_RINGBUF. The mappings keep the kernel map
// alive until Close, whatever happens to m.
func Open(m *ebpf.Map) (*Reader, error) {
	mp, err := mapRing(m, ebpf.RingBuf, unix.PROT_READ|unix.PROT_WRITE, unix.PROT_READ)
	if err != nil {
		return nil, err
	}
	return newReader(mp), nil
}

// newReader reads the ring laid out in mp, from its consumer position.
func newReader(mp mapping) *Reader {
	r := &Reader{mapping: mp}
	r.pos = atomic.LoadUint64(r.cons)
	r.published = r.pos
	return r
}

// Available returns how many bytes of records (headers and padding
// included) the ring holds beyond what this Reader has read.
func (r *Reader) Available() int {
	return int(atomic.LoadUint64(r.prod) - r.pos)
}

// Pos returns the Reader's position: the end of the last record read.
// Positions only grow; the ring holds the records from Pos to Head.
func (r *Reader) Pos() uint64 { return r.pos }

// At returns the position of the last record Next returned: the start of
// its header.
func (r *Reader) At() uint64 { return r.at }

// Head returns the producer's position: the end of the last record
// reserved. It is safe to call from any goroutine until Close.
func (r *Reader) Head() uint64 { return atomic.LoadUint64(r.prod) }

// Consumer returns the consumer position the kernel sees. It is safe to
// call from any goroutine until Close.
func (r *Reader) Consumer() uint64 { return atomic.LoadUint64(r.cons) }

// Ready reports whether Next has a record to return: the ring holds one
// and the first is committed (or discarded).
func (r *Reader) Ready() bool {
	if atomic.LoadUint64(r.prod) == r.pos {
		return false
	}
	return atomic.LoadUint32(r.header(r.pos))&busyBit == 0
}

func (r *Reader) header(pos uint64) *uint32 {
	return (*uint32)(unsafe.Pointer(&r.data[pos&r.mask]))
}

// Next returns the payload of the next committed record, in place, in the
// read-only mapping of the ring: the bytes are valid until the next call to
// Next or Publish, after which the producer may overwrite them; a caller
// that keeps them, or hands them to code that might write to them, copies
// them first. ok is false when the ring holds no record, or its first
// record is still being written (busySpins).
//
// Next hands back the space of the records before the one it returns (it
// publishes the position at that record's start: a committed record sits
// there, so no producer is told to wake anyone). The space of the last
// record read, and the news that the Reader caught up, wait for Publish,
// which a caller that found the ring empty calls before it sleeps (see
// Linger). Discarded records are skipped.
func (r *Reader) Next() (rec []byte, ok bool, err error) { return r.NextBefore(noLimit) }

// noLimit is a position Pos never takes: positions are multiples of 8.
const noLimit = ^uint64(0)

// NextBefore is Next for the records that start before the position limit,
// a Head seen earlier (a record boundary at or after Pos): it reports the
// ring empty once Pos reaches limit, also when it gets there by skipping
// discarded records, so a reader that drains what a ring held at some
// moment never reads a record written after it. Like Next it also reports
// empty at a record still reserved; Pos() != limit then tells the two
// apart. Positions are compared for equality, so they may wrap around
// (32-bit kernels).
func (r *Reader) NextBefore(limit uint64) (rec []byte, ok bool, err error) {
	for spins := 0; ; {
		if r.pos == limit {
			return nil, false, nil
		}
		prod := atomic.LoadUint64(r.prod)
		avail := prod - r.pos
		switch {
		case avail == 0:
			return nil, false, nil
		case avail > r.size:
			return nil, false, fmt.Errorf("%w: the producer is %d bytes ahead in a %d-byte ring", ErrCorrupt, avail, r.size)
		case avail < hdrSize:
			return nil, false, fmt.Errorf("%w: %d bytes left, less than a header", ErrCorrupt, avail)
		}
		hdr := atomic.LoadUint32(r.header(r.pos))
		if hdr&busyBit != 0 {
			if spins++; spins < busySpins {
				continue
			}
			return nil, false, nil
		}
		n := uint64(hdr & lenMask)
		padded := (n + 7) &^ 7
		if padded > avail-hdrSize {
			return nil, false, fmt.Errorf("%w: a %d-byte record, %d bytes left", ErrCorrupt, n, avail-hdrSize)
		}
		at := r.pos
		r.pos += hdrSize + padded
		if hdr&discardBit != 0 {
			continue
		}
		r.publish(at)
		r.at = at
		start := at&r.mask + hdrSize
		return r.data[start : start+n : start+n], true, nil
	}
}

// Linger yields the processor a few times (LingerYields), watching for a
// record, and reports whether one came. A consumer that found the ring
// empty calls it before it publishes its position and sleeps: while the
// position is unpublished the producer sends no wake-up, and a producer
// that is still writing has usually written the next record by then. A
// consumer that keeps up with a live producer would otherwise catch up
// after nearly every record, and every record written at a published
// position costs the producer a wake-up (an irq_work, expensive under
// virtualisation) and the consumer a trip through the scheduler. With
// nothing else to run, a yield costs well under a microsecond. Only the
// last record read keeps its space meanwhile.
func (r *Reader) Linger() bool {
	for range LingerYields {
		runtime.Gosched()
		if r.Ready() {
			return true
		}
	}
	return false
}

// LingerYields is how many times Linger yields the processor while it
// waits for a record.
const LingerYields = 16

// Publish tells the kernel that everything read so far is consumed. Once
// the Reader has caught up, the producer's next record wakes it.
func (r *Reader) Publish() { r.publish(r.pos) }

func (r *Reader) publish(pos uint64) {
	if !r.manual && pos != r.published {
		atomic.StoreUint64(r.cons, pos)
		r.published = pos
	}
}

// Manual hands the publishing of the consumer position to the owner: from
// now on reading publishes nothing (Next, Publish, Close), and the kernel
// sees only what SetConsumer stores. A reader whose records are released
// when acknowledged (pump.RingBufAcked) works this way.
func (r *Reader) Manual() { r.manual = true }

// SetConsumer publishes pos as the consumer position: the ring's space up
// to pos goes back to the producers. It is safe to call from any goroutine
// until Close, but callers serialise their calls.
func (r *Reader) SetConsumer(pos uint64) { atomic.StoreUint64(r.cons, pos) }

// RecordAt reads the header of the record at pos, between the published
// consumer position and Pos (committed records, which nobody overwrites
// until the consumer position passes them), and returns where the record
// after it starts, and whether it was discarded. It fails with ErrCorrupt
// when the header cannot be a record's. It is safe to call from any
// goroutine until Close.
func (r *Reader) RecordAt(pos uint64) (next uint64, discarded bool, err error) {
	hdr := atomic.LoadUint32(r.header(pos))
	if hdr&busyBit != 0 {
		return 0, false, fmt.Errorf("%w: the record at %d is still reserved", ErrCorrupt, pos)
	}
	n := uint64(hdr&lenMask+7) &^ 7
	if n > r.size-hdrSize {
		return 0, false, fmt.Errorf("%w: a %d-byte record at %d", ErrCorrupt, n, pos)
	}
	return pos + hdrSize + n, hdr&discardBit != 0, nil
}

// Close publishes what was read and unmaps the ring. The Reader must not
// be used afterwards (its methods then panic).
func (r *Reader) Close() error {
	if !r.mapped() {
		return nil
	}
	r.Publish()
	return r.unmap()
}
