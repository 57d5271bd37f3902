package ringread

import (
	"encoding/binary"
	"testing"
	"unsafe"
)

// ringOf lays out a fuzzed ring in plain memory as the kernel maps it: the
// consumer position, the producer position, then a size-byte data area
// mapped twice in a row (the second copy mirrors the first).
func ringOf(size int, cons, prod uint64, data []byte) *Reader {
	consPage := make([]byte, 8)
	binary.NativeEndian.PutUint64(consPage, cons)
	prodPage := make([]byte, 8+2*size)
	binary.NativeEndian.PutUint64(prodPage, prod)
	copy(prodPage[8:8+size], data)
	copy(prodPage[8+size:], prodPage[8:8+size])
	return newReader(layout(consPage, prodPage, 8, uint64(size)))
}

// record is a ring record: an 8-byte header with the length word (and the
// busy and discard bits), the payload, padding to 8 bytes.
func record(n uint32, flags uint32, fill byte) []byte {
	b := make([]byte, 8+(n+7)&^7)
	binary.NativeEndian.PutUint32(b, n|flags)
	for i := range n {
		b[8+i] = fill
	}
	return b
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// FuzzParse runs the reader's parser over a ring whose headers and
// positions come from the fuzzer: lengths past the ring or past the
// producer, busy and discard bits, positions that wrap around the end.
// The kernel never hands us such headers, so this is the one place where
// a synthetic ring is right. The parser must return a record, report the
// ring empty, or return ErrCorrupt: never panic, never hand out bytes
// outside the ring, never move past the producer.
func FuzzParse(f *testing.F) {
	const size = 256
	two := cat(record(16, 0, 1), record(5, 0, 2))
	f.Add(uint64(0), uint64(len(two)), uint64(0), two)
	f.Add(uint64(0), uint64(24), uint64(0), record(16, busyBit, 1))
	f.Add(uint64(0), uint64(48), uint64(0), cat(record(16, discardBit, 1), record(16, 0, 2)))
	f.Add(uint64(0), uint64(size), uint64(0), record(size, 0, 3))               // longer than the ring
	f.Add(uint64(0), uint64(16), uint64(0), record(40, 0, 4))                   // longer than what was produced
	f.Add(uint64(size-8), uint64(size+16), uint64(^uint64(0)), record(8, 0, 5)) // wraps around
	f.Add(uint64(1<<40), uint64(1<<40+24), uint64(1<<40+24), record(16, 0, 6))
	f.Add(uint64(100), uint64(0), uint64(0), []byte{}) // producer behind
	f.Fuzz(func(t *testing.T, cons, prod, limit uint64, data []byte) {
		r := ringOf(size, cons, prod, data)
		lo := uintptr(unsafe.Pointer(&r.data[0]))
		hi := lo + uintptr(len(r.data))
		for range 2*size/hdrSize + 2 {
			before := r.Pos()
			rec, ok, err := r.NextBefore(limit)
			if err != nil || !ok {
				break
			}
			if len(rec) > 0 {
				p := uintptr(unsafe.Pointer(&rec[0]))
				if p < lo || p+uintptr(cap(rec)) > hi {
					t.Fatalf("a %d-byte record outside the ring", len(rec))
				}
			}
			if r.Pos()-before > size || r.Pos()-cons > prod-cons {
				t.Fatalf("Pos moved from %d to %d, past the producer at %d", before, r.Pos(), prod)
			}
		}
		// Every record between the consumer position and Pos reads back.
		for at := cons; at != r.Pos(); {
			next, _, err := r.RecordAt(at)
			if err != nil || next-at > size {
				break
			}
			at = next
		}
	})
}
