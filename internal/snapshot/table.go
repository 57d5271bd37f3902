package snapshot

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/mapref"
)

// Kind says how an entry changed between two polls.
type Kind uint8

const (
	Added Kind = iota + 1
	Updated
	Deleted
)

func (k Kind) String() string {
	switch k {
	case Added:
		return "added"
	case Updated:
		return "updated"
	case Deleted:
		return "deleted"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Emit receives one change. key, old and new are views into the Table's
// buffers, valid only during the call; old is nil for Added, new is nil for
// Deleted.
type Emit func(kind Kind, key, old, new []byte)

// Options tune a Table. The zero value means defaults.
type Options struct {
	// Equal compares an old and a new value; nil compares the bytes.
	Equal func(a, b []byte) bool
	// Batch is the number of entries asked for per batch lookup; 0 means
	// 1024. Hash maps raise it when one bucket does not fit.
	Batch int
	// NoMmap reads an mmapable array with batch lookups instead of its
	// shared memory.
	NoMmap bool
	// NoBatch walks the map with GET_NEXT_KEY and lookups, the fallback for
	// kernels without batch lookups, instead of trying batch lookups first.
	NoBatch bool
}

type mode uint8

const (
	modeBatch   mode = iota // BPF_MAP_LOOKUP_BATCH with a cursor
	modeIterate             // GET_NEXT_KEY + LOOKUP_ELEM: kernels without batch support
	modeMmap                // a BPF_F_MMAPABLE array's shared memory
)

func (m mode) String() string {
	return [...]string{"batch", "iterate", "mmap"}[m]
}

// Table is the last observed contents of a hash or array map, as raw bytes,
// and the machinery that polls the map and reports what changed. A Table is
// not safe for concurrent use.
//
// Hash maps keep one slot per key (key bytes, value bytes, the generation of
// the poll that last saw it) and an index from key to slot; arrays use the
// index itself as slot. A poll compares each entry it reads with its slot and
// rewrites only the slots that changed, so a poll that finds no change
// allocates nothing, whatever the map size.
type Table struct {
	m       *ebpf.Map // the Table's own map, closed by Close (nil for mmap)
	mode    mode
	array   bool
	ks, vs  int
	entries int // the map's maximum number of entries
	equal   func(a, b []byte) bool
	loaded  bool // the first poll has run
	closed  bool

	// Slots.
	keys  []byte   // slot*ks
	vals  []byte   // slot*vs
	seen  []uint32 // generation that last saw the slot; 0 = free
	free  []int32
	small map[uint64]int32 // index for keys of up to 8 bytes
	large map[string]int32 // index for longer keys
	live  int
	gen   uint32
	count int // slots seen in the current poll

	// Where sweeps read entries: the kernel, on m's descriptor.
	src reader

	// Batch mode: two sweeps in the order the kernel returns entries, the
	// last complete one and the one being read (see compare).
	batch  int
	sweeps [2]sweep
	cur    int // index of the sweep being read
	cursor []byte

	// Iterate mode buffers.
	prev, next, val []byte

	// mmap.
	mem     []byte // the array's shared memory, mapped read-only
	stride  int
	scratch []byte // one value, copied out of mem
	state   []byte
	keybuf  [4]byte
}

// sweep is one whole-map read in the kernel's order: n entries, and the
// slot of each.
type sweep struct {
	keys, vals []byte
	slots      []int32
	n          int
}

// Watchable returns nil when m can be snapshotted, otherwise an error
// matching mapref.ErrMapType that says which types can.
func Watchable(m *ebpf.Map) error {
	switch m.Type() {
	case ebpf.Hash, ebpf.LRUHash, ebpf.Array, ebpf.LPMTrie:
		return nil
	}
	return fmt.Errorf("want a hash, LRU hash, array or LPM trie map: %w", mapref.ErrMapType)
}

// New returns an empty Table for m; its first Poll reports every entry as
// Added. On success the Table owns m (a handle's own clone of the caller's
// map): its syscalls go to m, and Close closes it. An mmapable array's m is
// closed at once: the Table's read-only mapping of its memory keeps the map
// alive until Close. On error m is left to the caller.
func New(m *ebpf.Map, opts Options) (*Table, error) {
	if err := Watchable(m); err != nil {
		return nil, err
	}
	array := m.Type() == ebpf.Array
	mode := modeBatch
	switch {
	case array && m.Flags()&unix.BPF_F_MMAPABLE != 0 && !opts.NoMmap:
		mode = modeMmap
	case opts.NoBatch:
		mode = modeIterate
	}
	t := newTable(int(m.KeySize()), int(m.ValueSize()), int(m.MaxEntries()), array, mode, opts)
	if mode != modeMmap {
		t.m, t.src = m, &kernel{fd: m.FD()}
		return t, nil
	}
	mem, stride, err := mapArray(m)
	if err != nil {
		return nil, err
	}
	t.mapped(mem, stride)
	m.Close() // the mapping holds the map
	return t, nil
}

// newTable returns an empty Table for a map of that shape, read in mode.
// The caller gives it what it reads: src (batch, iterate) or mapped (mmap).
func newTable(ks, vs, entries int, array bool, mode mode, opts Options) *Table {
	t := &Table{
		mode:    mode,
		ks:      ks,
		vs:      vs,
		entries: entries,
		equal:   opts.Equal,
		array:   array,
		batch:   opts.Batch,
		gen:     1,
	}
	if t.batch <= 0 {
		t.batch = 1024
	}
	switch {
	case mode == modeMmap:
	case array:
		t.batch = min(t.batch, max(entries, 1))
		t.vals = make([]byte, entries*vs)
		t.seen = make([]uint32, entries)
	case ks <= 8:
		t.small = make(map[uint64]int32)
	default:
		t.large = make(map[string]int32)
	}
	return t
}

// mapped makes the Table read an array's values from mem, one every stride
// bytes.
func (t *Table) mapped(mem []byte, stride int) {
	t.mem, t.stride = mem, stride
	t.scratch = make([]byte, t.vs)
	t.state = make([]byte, len(mem))
}

// Close releases what the Table holds outside the Go heap (its map, or the
// mapping of an mmapable array). Polls after Close fail with
// mapref.ErrClosed.
func (t *Table) Close() error {
	err := unmapArray(t.mem)
	if t.m != nil {
		err = t.m.Close()
	}
	t.mem, t.m, t.src = nil, nil, nil
	t.closed = true
	return err
}

// Mode names how the Table reads the map: "batch", "iterate" or "mmap".
func (t *Table) Mode() string { return t.mode.String() }

// Len is the number of entries the last poll saw.
func (t *Table) Len() int {
	if t.mode == modeMmap {
		if !t.loaded {
			return 0
		}
		return t.entries
	}
	return t.live
}

// Range calls f for each entry the last poll saw, in no particular order.
// The slices are views valid only during the call.
func (t *Table) Range(f func(key, val []byte)) {
	if !t.loaded {
		return
	}
	if t.mode == modeMmap {
		for i := range t.entries {
			binary.NativeEndian.PutUint32(t.keybuf[:], uint32(i))
			f(t.keybuf[:], t.state[i*t.stride:i*t.stride+t.vs])
		}
		return
	}
	for slot, g := range t.seen {
		if g != 0 {
			f(t.keyOf(slot), t.vals[slot*t.vs:(slot+1)*t.vs])
		}
	}
}

func (t *Table) keyOf(slot int) []byte {
	if t.array {
		binary.NativeEndian.PutUint32(t.keybuf[:], uint32(slot))
		return t.keybuf[:]
	}
	return t.keys[slot*t.ks : (slot+1)*t.ks]
}

// Poll reads the whole map, calls emit (which may be nil) for every entry
// that was added, updated or deleted since the previous poll, and returns
// the number of changes. The first poll reports every entry as Added.
//
// The syscalls go to the Table's own map, never to the caller's: closing
// the caller's map does not concern the Table.
func (t *Table) Poll(emit Emit) (int, error) {
	if t.closed {
		return 0, mapref.ErrClosed
	}
	if t.mode == modeMmap {
		return t.pollMmap(emit)
	}
	t.count = 0
	changes := 0
	var err error
	if t.mode == modeBatch {
		changes, err = t.sweepBatch(emit)
		if t.mode == modeIterate { // batch unsupported: fell back
			t.count, changes = 0, 0
			changes, err = t.sweepIterate(emit)
		}
	} else {
		changes, err = t.sweepIterate(emit)
	}
	if err != nil {
		// Slots seen so far carry the new generation; the rest carry the old
		// one. Restarting the sweep from scratch next time is correct: every
		// slot is compared again against the map.
		t.nextGen()
		return changes, mapref.Closed(err)
	}
	if t.count < t.live {
		changes += t.deleteUnseen(emit)
	}
	t.nextGen()
	t.loaded = true
	return changes, nil
}

func (t *Table) nextGen() {
	t.gen++
	if t.gen == 0 {
		t.gen = 1
	}
}

func (t *Table) sweepBatch(emit Emit) (int, error) {
	if len(t.cursor) == 0 {
		t.cursor = make([]byte, max(t.ks, 4))
	}
	cur, prev := &t.sweeps[t.cur], &t.sweeps[1-t.cur]
	changes, pos := 0, 0
	for first := true; ; {
		t.reserve(cur, pos+t.batch)
		n, err := t.src.lookupBatch(t.cursor, first, cur.keys[pos*t.ks:], cur.vals[pos*t.vs:], t.batch)
		switch {
		case err == nil || err == unix.ENOENT:
		case err == unix.ENOSPC && n == 0:
			// A hash bucket holds more entries than a batch: grow, retry.
			t.batch *= 2
			continue
		case first && !t.loaded && (err == ENOTSUPP || err == unix.EINVAL || err == unix.EOPNOTSUPP):
			// Refused at the very first call: a kernel without batch
			// lookups. Decided once; a later refusal is a poll error.
			t.mode = modeIterate
			return 0, nil
		default:
			// The slots may now be ahead of the last complete sweep: make
			// the next poll compare every entry with its slot.
			prev.n = 0
			return changes, fmt.Errorf("batch lookup: %w", err)
		}
		first = false
		changes += t.compare(cur, prev, pos, n, emit)
		pos += n
		if err == unix.ENOENT {
			cur.n = pos
			t.cur = 1 - t.cur
			return changes, nil
		}
	}
}

// reserve makes room for need entries in s, keeping those it holds.
func (t *Table) reserve(s *sweep, need int) {
	if len(s.slots) >= need {
		return
	}
	c := max(need, 2*len(s.slots))
	keys, vals, slots := make([]byte, c*t.ks), make([]byte, c*t.vs), make([]int32, c)
	copy(keys, s.keys)
	copy(vals, s.vals)
	copy(slots, s.slots)
	s.keys, s.vals, s.slots = keys, vals, slots
}

// compare processes the n entries the kernel just returned at position pos
// of the current sweep. The kernel returns an unchanged map in the same
// order every time, so a run of entries whose bytes equal the previous sweep
// at the same positions needs no index lookup and no value comparison: those
// entries are unchanged (their slot already holds a value equal to them).
// Only the other entries go through the index.
func (t *Table) compare(cur, prev *sweep, pos, n int, emit Emit) int {
	ks, vs, end := t.ks, t.vs, pos+n
	if end <= prev.n &&
		bytes.Equal(cur.keys[pos*ks:end*ks], prev.keys[pos*ks:end*ks]) &&
		bytes.Equal(cur.vals[pos*vs:end*vs], prev.vals[pos*vs:end*vs]) {
		copy(cur.slots[pos:end], prev.slots[pos:end])
		for _, slot := range cur.slots[pos:end] {
			if t.seen[slot] != t.gen {
				t.seen[slot] = t.gen
				t.count++
			}
		}
		return 0
	}
	changes := 0
	for i := pos; i < end; i++ {
		key := cur.keys[i*ks : (i+1)*ks]
		slot := -1
		if i < prev.n && bytes.Equal(key, prev.keys[i*ks:(i+1)*ks]) {
			slot = int(prev.slots[i])
		}
		var c int
		slot, c = t.visit(key, cur.vals[i*vs:(i+1)*vs], slot, emit)
		cur.slots[i] = int32(slot)
		changes += c
	}
	return changes
}

func (t *Table) sweepIterate(emit Emit) (int, error) {
	if len(t.next) == 0 {
		t.prev = make([]byte, t.ks)
		t.next = make([]byte, t.ks)
		t.val = make([]byte, t.vs)
	}
	changes := 0
	var prev []byte // nil: from the first key
	for {
		err := t.src.nextKey(prev, t.next)
		if err == unix.ENOENT {
			return changes, nil
		}
		if err != nil {
			return changes, fmt.Errorf("next key: %w", err)
		}
		switch err := t.src.lookup(t.next, t.val); err {
		case nil:
			_, c := t.visit(t.next, t.val, -1, emit)
			changes += c
		case unix.ENOENT: // deleted since: not in this snapshot
		default:
			return changes, fmt.Errorf("lookup: %w", err)
		}
		t.prev, t.next = t.next, t.prev
		prev = t.prev
	}
}

// visit compares one entry read from the map with its slot, which the
// caller may know already (slot >= 0), and returns the slot and the number
// of changes (0 or 1).
func (t *Table) visit(key, val []byte, slot int, emit Emit) (int, int) {
	ok := slot >= 0
	if !ok {
		slot, ok = t.slot(key)
	}
	if !ok {
		slot = t.alloc(key)
		copy(t.vals[slot*t.vs:], val)
		t.seen[slot] = t.gen
		t.count++
		t.live++
		if emit != nil {
			emit(Added, key, nil, val)
		}
		return slot, 1
	}
	if t.seen[slot] != t.gen {
		t.seen[slot] = t.gen
		t.count++
	}
	old := t.vals[slot*t.vs : (slot+1)*t.vs]
	if t.equal == nil {
		if bytes.Equal(old, val) {
			return slot, 0
		}
	} else if t.equal(old, val) {
		return slot, 0
	}
	if emit != nil {
		emit(Updated, key, old, val)
	}
	copy(old, val)
	return slot, 1
}

func smallKey(key []byte) uint64 {
	var b [8]byte
	copy(b[:], key)
	return binary.NativeEndian.Uint64(b[:])
}

// slot finds key's slot; ok is false when the key is new.
func (t *Table) slot(key []byte) (int, bool) {
	switch {
	case t.array:
		i := int(binary.NativeEndian.Uint32(key))
		return i, t.seen[i] != 0
	case t.small != nil:
		s, ok := t.small[smallKey(key)]
		return int(s), ok
	default:
		s, ok := t.large[string(key)]
		return int(s), ok
	}
}

// alloc gives a new key a slot.
func (t *Table) alloc(key []byte) int {
	if t.array {
		return int(binary.NativeEndian.Uint32(key))
	}
	var slot int
	if n := len(t.free); n > 0 {
		slot = int(t.free[n-1])
		t.free = t.free[:n-1]
	} else {
		slot = len(t.seen)
		t.seen = append(t.seen, 0)
		t.keys = append(t.keys, make([]byte, t.ks)...)
		t.vals = append(t.vals, make([]byte, t.vs)...)
	}
	copy(t.keys[slot*t.ks:], key)
	if t.small != nil {
		t.small[smallKey(key)] = int32(slot)
	} else {
		t.large[string(key)] = int32(slot)
	}
	return slot
}

// deleteUnseen reports and frees the slots this poll did not see.
func (t *Table) deleteUnseen(emit Emit) int {
	changes := 0
	for slot, g := range t.seen {
		if g == 0 || g == t.gen {
			continue
		}
		key := t.keyOf(slot)
		if emit != nil {
			emit(Deleted, key, t.vals[slot*t.vs:(slot+1)*t.vs], nil)
		}
		t.seen[slot] = 0
		t.live--
		changes++
		if t.array {
			continue
		}
		if t.small != nil {
			delete(t.small, smallKey(key))
		} else {
			delete(t.large, string(key))
		}
		t.free = append(t.free, int32(slot))
	}
	return changes
}

// pollMmap compares the array's shared memory with the last state in
// place: one comparison of the whole array when nothing changed, no syscall
// and no copy. A changed value is copied out once, then compared and
// reported from that copy, so a value being rewritten is never reported
// half-read twice.
func (t *Table) pollMmap(emit Emit) (int, error) {
	if t.loaded && bytes.Equal(t.mem, t.state) {
		return 0, nil
	}
	changes := 0
	for i, off := 0, 0; off < len(t.mem); i, off = i+1, off+t.stride {
		old := t.state[off : off+t.vs]
		if t.loaded && bytes.Equal(old, t.mem[off:off+t.vs]) {
			continue
		}
		val := t.scratch
		copy(val, t.mem[off:off+t.vs])
		kind := Added
		if t.loaded {
			if bytes.Equal(old, val) || (t.equal != nil && t.equal(old, val)) {
				continue
			}
			kind = Updated
		}
		changes++
		if emit != nil {
			binary.NativeEndian.PutUint32(t.keybuf[:], uint32(i))
			if kind == Added {
				emit(kind, t.keybuf[:], nil, val)
			} else {
				emit(kind, t.keybuf[:], old, val)
			}
		}
		copy(old, val)
	}
	t.loaded = true
	return changes, nil
}
