package jetstream

import (
	"encoding/binary"
	"fmt"
)

// The headers every message of this package carries (Forward sets all of
// them; a Publisher sets HeaderNode). Any NATS client can read them: the
// triple (node, ring, Pos) identifies a kernel record across a fleet.
const (
	HeaderNode  = "Bpfchan-Node"  // the publishing node (WithNode; default the host name)
	HeaderRing  = "Bpfchan-Ring"  // the ring's identity: the kernel's boot ID and the map's ID
	HeaderPos   = "Bpfchan-Pos"   // the record's position in its ring; in a packed message, the first record's
	HeaderCount = "Bpfchan-Count" // a packed message: how many records it holds
	HeaderLast  = "Bpfchan-Last"  // a packed message: the last record's position
)

// A packed message's payload is HeaderCount records one after the other,
// each prefixed by its length as a little-endian uint32.
const packedPrefix = 4

// unpack calls f with each of the count records of a packed payload, in
// order, and returns how many it found. A payload that ends inside a
// record, or holds bytes after the last one, is an error; the records
// before the fault have been passed to f.
func unpack(data []byte, count int, f func(i int, rec []byte)) (int, error) {
	for i := range count {
		if len(data) < packedPrefix {
			return i, fmt.Errorf("packed record %d of %d: %d bytes left, want a %d-byte length", i, count, len(data), packedPrefix)
		}
		n := binary.LittleEndian.Uint32(data)
		data = data[packedPrefix:]
		if uint64(n) > uint64(len(data)) {
			return i, fmt.Errorf("packed record %d of %d: length %d, %d bytes left", i, count, n, len(data))
		}
		f(i, data[:n])
		data = data[n:]
	}
	if len(data) != 0 {
		return count, fmt.Errorf("packed message: %d bytes after its %d records", len(data), count)
	}
	return count, nil
}
