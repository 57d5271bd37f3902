package snapshot

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/mapref"
)

// Key is the last observed value of one key of a hash or array map, and the
// machinery that polls it: one lookup syscall per poll, or none for an
// mmapable array, whose shared memory is read directly. A Key is not safe for
// concurrent use.
type Key struct {
	m       *ebpf.Map // the Key's own map, closed by Close (nil for mmap)
	kern    kernel    // lookups on m
	key     []byte
	val     []byte // last observed value, when present
	scratch []byte
	present bool
	equal   func(a, b []byte) bool
	mem     []byte // an mmapable array's value, mapped read-only
	whole   []byte // the whole mapping, for Close
	closed  bool
}

// NewKey returns a Key for key (exactly the map's key size) in m. Its first
// Poll reports Added when the key exists. An array index out of range is an
// error matching mapref.ErrOutOfRange: that key can never exist. On success the Key owns m, as a Table
// does (see New); on error m is left to the caller.
func NewKey(m *ebpf.Map, key []byte, opts Options) (*Key, error) {
	if err := Watchable(m); err != nil {
		return nil, err
	}
	if len(key) != int(m.KeySize()) {
		return nil, fmt.Errorf("key of %d bytes, map has %d", len(key), m.KeySize())
	}
	k := &Key{
		key:     bytes.Clone(key),
		val:     make([]byte, m.ValueSize()),
		scratch: make([]byte, m.ValueSize()),
		equal:   opts.Equal,
	}
	if m.Type() == ebpf.Array {
		i := binary.NativeEndian.Uint32(key)
		if i >= m.MaxEntries() {
			return nil, fmt.Errorf("index %d not below %d: %w", i, m.MaxEntries(), mapref.ErrOutOfRange)
		}
		if m.Flags()&unix.BPF_F_MMAPABLE != 0 && !opts.NoMmap {
			mem, stride, err := mapArray(m)
			if err != nil {
				return nil, err
			}
			off := int(i) * stride
			k.whole, k.mem = mem, mem[off:off+int(m.ValueSize())]
			m.Close() // the mapping holds the map
			return k, nil
		}
	}
	k.m, k.kern.fd = m, m.FD()
	return k, nil
}

// Close releases what the Key holds outside the Go heap (its map, or the
// mapping of an mmapable array). Polls after Close fail with
// mapref.ErrClosed.
func (k *Key) Close() error {
	err := unmapArray(k.whole)
	if k.m != nil {
		err = k.m.Close()
	}
	k.whole, k.mem, k.m, k.closed = nil, nil, nil, true
	return err
}

// Bytes returns the key's bytes (not to be modified).
func (k *Key) Bytes() []byte { return k.key }

// Present reports whether the key existed at the last poll, and its value
// then (a view valid until the next poll).
func (k *Key) Present() ([]byte, bool) {
	return k.val, k.present
}

// Poll reads the key, calls emit (which may be nil) when it was added,
// updated or deleted since the previous poll, and returns the number of
// changes (0 or 1). The first poll reports Added when the key exists.
//
// The lookup goes to the Key's own map (see Table.Poll).
func (k *Key) Poll(emit Emit) (int, error) {
	if k.closed {
		return 0, mapref.ErrClosed
	}
	present := true
	if k.mem != nil {
		copy(k.scratch, k.mem)
	} else {
		switch err := k.kern.lookup(k.key, k.scratch); err {
		case nil:
		case unix.ENOENT:
			present = false
		default:
			return 0, mapref.Closed(fmt.Errorf("lookup: %w", err))
		}
	}
	switch {
	case !present && !k.present:
		return 0, nil
	case !present:
		k.present = false
		if emit != nil {
			emit(Deleted, k.key, k.val, nil)
		}
		return 1, nil
	case !k.present:
		k.present = true
		copy(k.val, k.scratch)
		if emit != nil {
			emit(Added, k.key, nil, k.val)
		}
		return 1, nil
	}
	if bytes.Equal(k.val, k.scratch) || (k.equal != nil && k.equal(k.val, k.scratch)) {
		return 0, nil
	}
	if emit != nil {
		emit(Updated, k.key, k.val, k.scratch)
	}
	copy(k.val, k.scratch)
	return 1, nil
}
