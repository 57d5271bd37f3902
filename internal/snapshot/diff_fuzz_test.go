package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzDiff runs a Table's diff over tables held in plain memory: a layout
// (hash or array; batch lookups, the key-by-key walk or an mmapable array's
// memory), then rounds of contents, each read in the order the fuzz input
// gives. After every poll, applying the emitted events to the contents
// before it must give exactly the contents after it, every Old must be the
// value the key had before, and the Table must hold the new contents. A poll
// the reader fails half-way (as a kernel call can) may leave changes for the
// next poll, which must then bring everything into agreement.
func FuzzDiff(f *testing.F) {
	f.Add([]byte{0, 3, 7, 4, 1, 2, 3, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 2, 1, 0, 5, 0, 1, 1, 1, 1, 1, 1, 1, 1, 3, 0xff, 0})
	f.Add([]byte{1, 11, 2, 6, 3, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 4, 9, 0, 1, 2, 3, 1, 0})
	f.Add([]byte{2, 0, 7, 9, 2, 1, 5, 3, 0xaa, 4, 0xbb, 7, 0xcc, 2, 3, 1, 0xaa, 0, 0})
	f.Add([]byte{4, 3, 15, 1, 0, 0, 8, 1, 1, 2, 3, 4, 7, 5, 6, 7, 8, 0, 3, 1, 1, 2, 3, 4})
	f.Add([]byte{0, 1, 0, 2, 2, 5, 6, 0, 0x23, 4, 0, 7, 1, 8, 0x23, 4, 1, 0, 0, 2, 0, 1, 9})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &input{b: data}
		layout := in.byte() % 5
		hash := layout < 2
		ks, vs, entries := 4, 1+int(in.byte()%9), 0
		var universe [][]byte // a hash map's possible keys
		if hash {
			ks = 1 + int(in.byte()%12)
			seen := map[string]bool{}
			for range 1 + in.byte()%16 {
				k := in.bytes(ks)
				if !seen[string(k)] {
					seen[string(k)] = true
					universe = append(universe, k)
				}
			}
		} else {
			entries = 1 + int(in.byte()%16)
		}
		opts := Options{Batch: 1 + int(in.byte()%8)}
		flags := in.byte()
		mode := [...]mode{modeBatch, modeIterate, modeBatch, modeIterate, modeMmap}[layout]
		tb := newTable(ks, vs, entries, !hash, mode, opts)

		src := &memory{ks: ks, vs: vs, bucket: int(flags % 4), lateEnd: flags&4 != 0, refuse: flags&8 != 0}
		var mem []byte // the mmapable array's memory
		stride := (vs + 7) &^ 7
		if mode == modeMmap {
			mem = make([]byte, entries*stride)
			tb.mapped(mem, stride)
		} else {
			tb.src = src
		}
		array := make([][]byte, entries) // an array's values, kept across rounds
		for i := range array {
			array[i] = make([]byte, vs)
		}

		replay := map[string]string{} // the contents the events so far describe
		for round := 0; round < 32 && in.more(); round++ {
			// This round's contents, in the order a sweep returns them.
			n, fail := int(in.byte()%17), in.byte()
			after := map[string]string{}
			src.keys, src.vals = src.keys[:0], src.vals[:0]
			if hash {
				for range n {
					k, v := universe[int(in.byte())%len(universe)], in.bytes(vs)
					if _, dup := after[string(k)]; !dup {
						after[string(k)] = string(v)
						src.keys, src.vals = append(src.keys, k), append(src.vals, v)
					}
				}
			} else {
				for range n {
					copy(array[int(in.byte())%entries], in.bytes(vs))
				}
				for i, v := range array {
					k := binary.NativeEndian.AppendUint32(nil, uint32(i))
					after[string(k)] = string(v)
					src.keys, src.vals = append(src.keys, k), append(src.vals, v)
					if mem != nil {
						copy(mem[i*stride:], v)
					}
				}
			}
			src.calls, src.failAt = 0, 0
			if fail < 64 && mode != modeMmap {
				src.failAt = 1 + int(fail%4)
			}

			if err := diff(tb, replay); err != nil {
				if !errors.Is(err, unix.EIO) || src.calls != src.failAt {
					t.Fatalf("round %d: poll: %v", round, err)
				}
				src.failAt = 0 // the next poll must make up for the failed one
				if err := diff(tb, replay); err != nil {
					t.Fatalf("round %d: poll after a failed one: %v", round, err)
				}
			}
			src.failAt = 0
			if !maps.Equal(replay, after) {
				t.Fatalf("round %d: the events lead to %x, want %x", round, replay, after)
			}
			held := map[string]string{}
			tb.Range(func(k, v []byte) { held[string(k)] = string(v) })
			if !maps.Equal(held, after) || tb.Len() != len(after) {
				t.Fatalf("round %d: the table holds %x (Len %d), want %x", round, held, tb.Len(), after)
			}
			quiet := maps.Clone(replay)
			if err := diff(tb, quiet); err != nil || !maps.Equal(quiet, after) {
				t.Fatalf("round %d: poll of unchanged contents: %v, events lead to %x, want %x", round, err, quiet, after)
			}
		}
	})
}

// diff polls tb and applies every event it emits to replay, checking that
// each is possible: Added for a key replay lacks, Updated and Deleted with
// Old equal to replay's value, Updated to a different value, one event per
// key, and as many events as Poll counts.
func diff(tb *Table, replay map[string]string) error {
	var bad error
	seen := map[string]bool{}
	n, err := tb.Poll(func(kind Kind, key, old, new []byte) {
		k := string(key)
		prev, had := replay[k]
		switch {
		case bad != nil:
			return
		case seen[k]:
			bad = errors.New("two events for one key: " + kind.String())
		case kind == Added && (had || old != nil || new == nil),
			kind == Updated && (!had || string(old) != prev || new == nil || bytes.Equal(old, new)),
			kind == Deleted && (!had || string(old) != prev || new != nil),
			kind != Added && kind != Updated && kind != Deleted:
			bad = errors.New("impossible event: " + kind.String())
		case kind == Deleted:
			delete(replay, k)
		default:
			replay[k] = string(new)
		}
		seen[k] = true
	})
	if bad == nil && n != len(seen) {
		bad = errors.New("Poll counted another number of changes than it emitted")
	}
	return errors.Join(bad, err)
}

// memory is a map held in plain memory, read as the kernel reads a map: its
// entries in their order, in batches behind a cursor or key by key.
type memory struct {
	ks, vs     int
	keys, vals [][]byte
	bucket     int  // a batch smaller than this fails with ENOSPC, as a hash bucket that does not fit
	lateEnd    bool // a sweep that ends on a full batch reports the end with one more, empty, batch
	refuse     bool // the first batch lookup is refused, as by a kernel without batch lookups
	failAt     int  // the failAt-th call (from 1) fails with EIO; 0: none
	calls      int
}

func (m *memory) failed() bool {
	m.calls++
	return m.calls == m.failAt
}

func (m *memory) lookupBatch(cursor []byte, first bool, keys, vals []byte, count int) (int, error) {
	switch {
	case m.refuse:
		m.refuse = false
		return 0, unix.EINVAL
	case m.failed():
		return 0, unix.EIO
	case count < m.bucket:
		return 0, unix.ENOSPC
	}
	pos := 0
	if !first {
		pos = int(binary.NativeEndian.Uint32(cursor))
	}
	n := min(count, len(m.keys)-pos)
	for i := range n {
		copy(keys[i*m.ks:(i+1)*m.ks], m.keys[pos+i])
		copy(vals[i*m.vs:(i+1)*m.vs], m.vals[pos+i])
	}
	binary.NativeEndian.PutUint32(cursor, uint32(pos+n))
	if pos+n == len(m.keys) && (n < count || !m.lateEnd) {
		return n, unix.ENOENT
	}
	return n, nil
}

func (m *memory) nextKey(prev, next []byte) error {
	if m.failed() {
		return unix.EIO
	}
	i := 0
	if prev != nil {
		i = m.index(prev) + 1 // a key gone since: from the first, as a hash map does
	}
	if i >= len(m.keys) {
		return unix.ENOENT
	}
	copy(next, m.keys[i])
	return nil
}

func (m *memory) lookup(key, val []byte) error {
	if m.failed() {
		return unix.EIO
	}
	i := m.index(key)
	if i < 0 {
		return unix.ENOENT
	}
	copy(val, m.vals[i])
	return nil
}

func (m *memory) index(key []byte) int {
	for i, k := range m.keys {
		if bytes.Equal(k, key) {
			return i
		}
	}
	return -1
}

// input hands out a fuzz input's bytes; past its end, zeros.
type input struct{ b []byte }

func (in *input) more() bool { return len(in.b) > 0 }

func (in *input) byte() byte {
	if len(in.b) == 0 {
		return 0
	}
	c := in.b[0]
	in.b = in.b[1:]
	return c
}

func (in *input) bytes(n int) []byte {
	out := make([]byte, n)
	in.b = in.b[copy(out, in.b):]
	return out
}
