package snapshot_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/mapref"
	"github.com/bpfchan/bpfchan/internal/snapshot"
	"github.com/bpfchan/bpfchan/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// newTable returns a Table on its own clone of m, as a watcher makes it.
func newTable(t *testing.T, m *ebpf.Map, opts snapshot.Options) (*snapshot.Table, error) {
	return owned(t, m, func(c *ebpf.Map) (*snapshot.Table, error) { return snapshot.New(c, opts) })
}

// newKey returns a Key on its own clone of m, as a watcher makes it.
func newKey(t *testing.T, m *ebpf.Map, key []byte, opts snapshot.Options) (*snapshot.Key, error) {
	return owned(t, m, func(c *ebpf.Map) (*snapshot.Key, error) { return snapshot.NewKey(c, key, opts) })
}

// owned gives a clone of m to open, which takes it over when it succeeds,
// and closes what open returned when t ends.
func owned[P interface{ Close() error }](t *testing.T, m *ebpf.Map, open func(*ebpf.Map) (P, error)) (P, error) {
	t.Helper()
	c, err := m.Clone()
	must(t, err)
	p, err := open(c)
	if err != nil {
		c.Close()
		return p, err
	}
	t.Cleanup(func() { must(t, p.Close()) })
	return p, nil
}

func newMap(tb testing.TB, spec *ebpf.MapSpec) *ebpf.Map {
	tb.Helper()
	testenv.RequireBPF(tb)
	m, err := ebpf.NewMap(spec)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

type change struct {
	kind          snapshot.Kind
	key, old, new string
}

func (c change) String() string { return fmt.Sprintf("%s %x %x->%x", c.kind, c.key, c.old, c.new) }

// poller is a Table or a Key.
type poller interface {
	Poll(snapshot.Emit) (int, error)
}

func poll(t *testing.T, p poller) []change {
	t.Helper()
	var got []change
	n, err := p.Poll(func(k snapshot.Kind, key, old, new []byte) {
		got = append(got, change{k, string(key), string(old), string(new)})
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(got) {
		t.Fatalf("Poll returned %d, emitted %d", n, len(got))
	}
	slices.SortFunc(got, func(a, b change) int { return bytes.Compare([]byte(a.key), []byte(b.key)) })
	return got
}

// contents reads m through cilium/ebpf's iterator: the ground truth.
func contents(t *testing.T, m *ebpf.Map) map[string]string {
	t.Helper()
	out := map[string]string{}
	var k, v []byte
	it := m.Iterate()
	for it.Next(&k, &v) {
		out[string(k)] = string(v)
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func tableContents(tb *snapshot.Table) map[string]string {
	out := map[string]string{}
	tb.Range(func(k, v []byte) { out[string(k)] = string(v) })
	return out
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }

func key(ks int, i uint32) []byte {
	b := make([]byte, ks)
	binary.NativeEndian.PutUint32(b, i)
	if ks > 4 {
		b[ks-1] = 0x5a // a distinct tail, so keys longer than 8 bytes are exercised
	}
	return b
}

func TestTableHashChanges(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  ebpf.MapType
		ks   uint32
		opts snapshot.Options
		mode string
	}{
		{"hash", ebpf.Hash, 4, snapshot.Options{}, "batch"},
		{"hash tiny batch", ebpf.Hash, 4, snapshot.Options{Batch: 1}, "batch"},
		{"hash 16-byte keys", ebpf.Hash, 16, snapshot.Options{}, "batch"},
		{"lru", ebpf.LRUHash, 8, snapshot.Options{}, "batch"},
		{"hash iterated", ebpf.Hash, 4, snapshot.Options{NoBatch: true}, "iterate"},
		{"hash 16-byte keys iterated", ebpf.Hash, 16, snapshot.Options{NoBatch: true}, "iterate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMap(t, &ebpf.MapSpec{Type: tc.typ, KeySize: tc.ks, ValueSize: 8, MaxEntries: 4096})
			for i := range uint32(1000) {
				if err := m.Put(key(int(tc.ks), i), u64(uint64(i))); err != nil {
					t.Fatal(err)
				}
			}
			tb, err := newTable(t, m, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := tb.Mode(); got != tc.mode {
				t.Fatalf("mode %s, want %s", got, tc.mode)
			}
			if got := poll(t, tb); len(got) != 1000 || got[0].kind != snapshot.Added {
				t.Fatalf("first poll: %d changes (%v...), want 1000 Added", len(got), got[:min(len(got), 1)])
			}
			if got, want := tableContents(tb), contents(t, m); !maps.Equal(got, want) {
				t.Fatalf("table holds %d entries, map %d, or they differ", len(got), len(want))
			}
			if got := poll(t, tb); len(got) != 0 {
				t.Fatalf("quiet poll: got %v, want nothing", got)
			}
			ks := int(tc.ks)
			must(t, m.Put(key(ks, 5), u64(500)))     // update
			must(t, m.Put(key(ks, 6), u64(6)))       // rewrite, unchanged
			must(t, m.Delete(key(ks, 7)))            // delete
			must(t, m.Put(key(ks, 2000), u64(2000))) // add
			must(t, m.Delete(key(ks, 8)))            // delete and re-create: an update
			must(t, m.Put(key(ks, 8), u64(88)))
			want := []change{
				{snapshot.Updated, string(key(ks, 5)), string(u64(5)), string(u64(500))},
				{snapshot.Deleted, string(key(ks, 7)), string(u64(7)), ""},
				{snapshot.Updated, string(key(ks, 8)), string(u64(8)), string(u64(88))},
				{snapshot.Added, string(key(ks, 2000)), "", string(u64(2000))},
			}
			slices.SortFunc(want, func(a, b change) int { return bytes.Compare([]byte(a.key), []byte(b.key)) })
			if got := poll(t, tb); !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			if got, want := tableContents(tb), contents(t, m); !maps.Equal(got, want) {
				t.Fatalf("table and map differ after changes")
			}
			if got, want := tb.Len(), 1000; got != want {
				t.Fatalf("Len %d, want %d", got, want)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestTableArrays(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags uint32
		vs    uint32
		opts  snapshot.Options
		mode  string
	}{
		{"batch", 0, 8, snapshot.Options{}, "batch"},
		{"mmap", unix.BPF_F_MMAPABLE, 8, snapshot.Options{}, "mmap"},
		{"mmap 4-byte values", unix.BPF_F_MMAPABLE, 4, snapshot.Options{}, "mmap"},
		{"mmapable read by batch", unix.BPF_F_MMAPABLE, 4, snapshot.Options{NoMmap: true}, "batch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMap(t, &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: tc.vs, MaxEntries: 3000, Flags: tc.flags})
			enc := func(v uint32) []byte {
				b := make([]byte, tc.vs)
				binary.NativeEndian.PutUint32(b, v)
				return b
			}
			must(t, m.Put(uint32(10), enc(10)))
			tb, err := newTable(t, m, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := tb.Mode(); got != tc.mode {
				t.Fatalf("mode %s, want %s", got, tc.mode)
			}
			if got := poll(t, tb); len(got) != 3000 {
				t.Fatalf("first poll: %d changes, want 3000 Added", len(got))
			}
			if got, want := tableContents(tb), contents(t, m); !maps.Equal(got, want) {
				t.Fatalf("table and map differ")
			}
			if got := poll(t, tb); len(got) != 0 {
				t.Fatalf("quiet poll: got %v", got)
			}
			must(t, m.Put(uint32(10), enc(11)))
			must(t, m.Put(uint32(2999), enc(7)))
			must(t, m.Put(uint32(5), enc(0))) // unchanged
			want := []change{
				{snapshot.Updated, string(u32(10)), string(enc(10)), string(enc(11))},
				{snapshot.Updated, string(u32(2999)), string(enc(0)), string(enc(7))},
			}
			slices.SortFunc(want, func(a, b change) int { return bytes.Compare([]byte(a.key), []byte(b.key)) })
			if got := poll(t, tb); !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

func TestTableLPMTrie(t *testing.T) {
	m := newMap(t, &ebpf.MapSpec{Type: ebpf.LPMTrie, KeySize: 8, ValueSize: 4, MaxEntries: 64, Flags: 1 /* BPF_F_NO_PREALLOC */})
	k := func(plen uint32, a, b byte) []byte { return append(u32(plen), 10, a, b, 0) }
	must(t, m.Put(k(16, 0, 0), u32(1)))
	must(t, m.Put(k(24, 1, 2), u32(2)))
	tb, err := newTable(t, m, snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := poll(t, tb); len(got) != 2 {
		t.Fatalf("first poll: %v, want 2 Added", got)
	}
	if got := tb.Mode(); got != "batch" {
		t.Fatalf("mode %s, want batch (LPM tries have batch lookups since 5.6)", got)
	}
	must(t, m.Delete(k(16, 0, 0)))
	must(t, m.Put(k(24, 1, 2), u32(3)))
	want := []change{
		{snapshot.Deleted, string(k(16, 0, 0)), string(u32(1)), ""},
		{snapshot.Updated, string(k(24, 1, 2)), string(u32(2)), string(u32(3))},
	}
	slices.SortFunc(want, func(a, b change) int { return bytes.Compare([]byte(a.key), []byte(b.key)) })
	if got := poll(t, tb); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestTableEqualKeepsReportedValue(t *testing.T) {
	m := newMap(t, &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 8})
	must(t, m.Put(uint32(1), uint64(100)))
	// Values within 10 of the last reported one are equal.
	near := func(a, b []byte) bool {
		x, y := int64(binary.NativeEndian.Uint64(a)), int64(binary.NativeEndian.Uint64(b))
		return x-y < 10 && y-x < 10
	}
	tb, err := newTable(t, m, snapshot.Options{Equal: near})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, tb)
	for _, step := range []struct {
		v    uint64
		want int
	}{{105, 0}, {109, 0}, {111, 1}, {115, 0}, {100, 1}} {
		must(t, m.Put(uint32(1), step.v))
		if got := poll(t, tb); len(got) != step.want {
			t.Fatalf("put %d: %d changes, want %d", step.v, len(got), step.want)
		}
	}
}

func TestKeyPoll(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec ebpf.MapSpec
	}{
		{"hash", ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 8}},
		{"array", ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 8}},
		{"mmap array", ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 8, Flags: unix.BPF_F_MMAPABLE}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMap(t, &tc.spec)
			k, err := newKey(t, m, u32(3), snapshot.Options{})
			if err != nil {
				t.Fatal(err)
			}
			first := poll(t, k)
			if tc.spec.Type == ebpf.Hash && len(first) != 0 {
				t.Fatalf("absent key: got %v", first)
			}
			if tc.spec.Type == ebpf.Array && (len(first) != 1 || first[0].kind != snapshot.Added) {
				t.Fatalf("array entry: got %v, want Added", first)
			}
			must(t, m.Put(uint32(3), uint64(100)))
			got := poll(t, k)
			if len(got) != 1 || got[0].new != string(u64(100)) {
				t.Fatalf("after put: got %v", got)
			}
			must(t, m.Put(uint32(3), uint64(100)))
			if got := poll(t, k); len(got) != 0 {
				t.Fatalf("rewrite: got %v, want nothing", got)
			}
			if tc.spec.Type == ebpf.Hash {
				must(t, m.Delete(uint32(3)))
				got := poll(t, k)
				want := []change{{snapshot.Deleted, string(u32(3)), string(u64(100)), ""}}
				if !slices.Equal(got, want) {
					t.Fatalf("after delete: got %v, want %v", got, want)
				}
			}
		})
	}
}

func TestBadMaps(t *testing.T) {
	for _, spec := range []ebpf.MapSpec{
		{Type: ebpf.Queue, ValueSize: 8, MaxEntries: 8},
		{Type: ebpf.Stack, ValueSize: 8, MaxEntries: 8},
		{Type: ebpf.RingBuf, MaxEntries: 4096},
		{Type: ebpf.PerfEventArray},
		{Type: ebpf.PerCPUHash, KeySize: 4, ValueSize: 8, MaxEntries: 8},
	} {
		m := newMap(t, &spec)
		if _, err := newTable(t, m, snapshot.Options{}); !errors.Is(err, mapref.ErrMapType) {
			t.Errorf("%s: New: got %v, want ErrMapType", spec.Type, err)
		}
	}
	m := newMap(t, &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 8})
	if _, err := newKey(t, m, u32(8), snapshot.Options{}); err == nil {
		t.Errorf("index 8 of 8: no error")
	}
}

// TestPollOwnMap: a Table and a Key read their own map. Closing the map
// they were made from changes nothing; after their own Close, a poll fails
// with ErrClosed.
func TestPollOwnMap(t *testing.T) {
	for _, flags := range []uint32{0, unix.BPF_F_MMAPABLE} {
		testenv.RequireBPF(t)
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 8, Flags: flags})
		must(t, err)
		kept, err := m.Clone()
		must(t, err)
		defer kept.Close()
		tb, err := newTable(t, m, snapshot.Options{})
		must(t, err)
		k, err := newKey(t, m, u32(2), snapshot.Options{})
		must(t, err)
		poll(t, tb)
		poll(t, k)
		m.Close()
		must(t, kept.Put(uint32(2), uint64(20)))
		want := []change{{snapshot.Updated, string(u32(2)), string(u64(0)), string(u64(20))}}
		if got := poll(t, tb); !slices.Equal(got, want) {
			t.Errorf("flags %#x: Table after the map it was made from closed: got %v, want %v", flags, got, want)
		}
		if got := poll(t, k); !slices.Equal(got, want) {
			t.Errorf("flags %#x: Key after the map it was made from closed: got %v, want %v", flags, got, want)
		}
		must(t, tb.Close())
		must(t, k.Close())
		for _, p := range []poller{tb, k} {
			if _, err := p.Poll(nil); !errors.Is(err, mapref.ErrClosed) {
				t.Errorf("flags %#x: poll after Close: got %v, want ErrClosed", flags, err)
			}
		}
	}
}

func TestWarmPollAllocatesNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec ebpf.MapSpec
	}{
		{"hash", ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 4096}},
		{"hash 16-byte keys", ebpf.MapSpec{Type: ebpf.Hash, KeySize: 16, ValueSize: 8, MaxEntries: 4096}},
		{"array", ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 4096}},
		{"mmap array", ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 4096, Flags: unix.BPF_F_MMAPABLE}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMap(t, &tc.spec)
			for i := range uint32(4096) {
				must(t, m.Put(key(int(tc.spec.KeySize), i), u64(uint64(i))))
			}
			tb, err := newTable(t, m, snapshot.Options{})
			if err != nil {
				t.Fatal(err)
			}
			emit := func(snapshot.Kind, []byte, []byte, []byte) { t.Fatal("change in a quiet map") }
			poll(t, tb)
			if got := testing.AllocsPerRun(5, func() { must(t, second(tb.Poll(emit))) }); got != 0 {
				t.Fatalf("%v allocations per warm poll, want 0", got)
			}
		})
	}
}

func second[T any](_ T, err error) error { return err }

// TestTableRandomMutations applies rounds of random puts and deletes and
// checks after each poll that replaying the emitted changes on the previous
// contents gives the map's contents, and that the Table holds them too.
func TestTableRandomMutations(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  ebpf.MapType
		opts snapshot.Options
	}{
		{"hash", ebpf.Hash, snapshot.Options{}},
		{"hash batch 7", ebpf.Hash, snapshot.Options{Batch: 7}},
		{"lru", ebpf.LRUHash, snapshot.Options{Batch: 64}},
		{"hash iterated", ebpf.Hash, snapshot.Options{NoBatch: true}},
		{"array", ebpf.Array, snapshot.Options{Batch: 50}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMap(t, &ebpf.MapSpec{Type: tc.typ, KeySize: 4, ValueSize: 8, MaxEntries: 512})
			tb, err := newTable(t, m, tc.opts)
			must(t, err)
			rng := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
			want := map[string]string{}
			for round := range 60 {
				for range rng.IntN(40) {
					k := uint32(rng.IntN(512))
					if tc.typ != ebpf.Array && rng.IntN(3) == 0 {
						if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
							t.Fatal(err)
						}
						continue
					}
					must(t, m.Put(k, uint64(rng.IntN(4))))
				}
				_, err := tb.Poll(func(kind snapshot.Kind, key, old, new []byte) {
					k := string(key)
					prev, ok := want[k]
					switch {
					case kind == snapshot.Added && ok, kind != snapshot.Added && (!ok || prev != string(old)):
						t.Fatalf("round %d: %s %x from %x, but the replay holds %x (%v)", round, kind, key, old, prev, ok)
					case kind == snapshot.Deleted:
						delete(want, k)
					default:
						want[k] = string(new)
					}
				})
				must(t, err)
				got := contents(t, m)
				if !maps.Equal(want, got) || !maps.Equal(tableContents(tb), got) {
					t.Fatalf("round %d: replay (%d entries) or table (%d) differs from the map (%d)", round, len(want), tb.Len(), len(got))
				}
			}
		})
	}
}

// fill puts n entries i → i into m.
func fill(t *testing.T, m *ebpf.Map, n uint32) {
	t.Helper()
	keys, vals := make([]uint32, n), make([]uint64, n)
	for i := range n {
		keys[i], vals[i] = i, uint64(i)
	}
	if _, err := m.BatchUpdate(keys, vals, nil); err != nil {
		t.Fatal(err)
	}
}

// TestTableBatchFallback: a kernel that refuses batch lookups from the
// start is walked key by key, and the first poll still reports every entry.
func TestTableBatchFallback(t *testing.T) {
	m := newMap(t, &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1024})
	fill(t, m, 1000)
	tb, err := newTable(t, m, snapshot.Options{})
	must(t, err)
	refused := 0
	snapshot.BeforeBatch(tb, func() bool { refused++; return true })
	if got := poll(t, tb); len(got) != 1000 {
		t.Fatalf("first poll: %d changes, want 1000 Added", len(got))
	}
	if got := tb.Mode(); got != "iterate" || refused != 1 {
		t.Fatalf("mode %s after %d refused calls, want iterate after 1", got, refused)
	}
	must(t, m.Put(uint32(5), uint64(55)))
	want := []change{{snapshot.Updated, string(u32(5)), string(u64(5)), string(u64(55))}}
	if got := poll(t, tb); !slices.Equal(got, want) || refused != 1 {
		t.Fatalf("got %v (%d refused calls), want %v without a batch call", got, refused, want)
	}
	if got, want := tableContents(tb), contents(t, m); !maps.Equal(got, want) {
		t.Fatalf("table and map differ")
	}
}

// TestTableBatchRefusedLater: once a poll has succeeded with batch lookups,
// a refused batch call is that poll's error, not a switch to walking the map
// key by key for ever.
func TestTableBatchRefusedLater(t *testing.T) {
	m := newMap(t, &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1024})
	fill(t, m, 1000)
	tb, err := newTable(t, m, snapshot.Options{})
	must(t, err)
	poll(t, tb)
	refuse := true
	snapshot.BeforeBatch(tb, func() bool { r := refuse; refuse = false; return r })
	if _, err := tb.Poll(nil); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("refused poll: got %v, want EINVAL", err)
	}
	if got := tb.Mode(); got != "batch" {
		t.Fatalf("mode %s after a refused call, want batch", got)
	}
	must(t, m.Delete(uint32(7)))
	want := []change{{snapshot.Deleted, string(u32(7)), string(u64(7)), ""}}
	if got := poll(t, tb); !slices.Equal(got, want) {
		t.Fatalf("next poll: got %v, want %v", got, want)
	}
}

// TestTableMapClosedMidSweep: the map the Table was made from is closed
// during a sweep and another map takes its descriptor number. The sweep, and
// every later poll, go on reading the watched map through the Table's own.
func TestTableMapClosedMidSweep(t *testing.T) {
	testenv.RequireBPF(t)
	spec := &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1024}
	m, err := ebpf.NewMap(spec)
	must(t, err)
	defer m.Close()
	kept, err := m.Clone()
	must(t, err)
	defer kept.Close()
	fill(t, m, 1000)
	tb, err := newTable(t, m, snapshot.Options{Batch: 64})
	must(t, err)
	poll(t, tb)
	calls := 0
	var other *ebpf.Map
	defer func() {
		if other != nil {
			other.Close()
		}
	}()
	snapshot.BeforeBatch(tb, func() bool {
		if calls++; calls == 2 {
			fd := m.FD()
			m.Close()
			if other, err = ebpf.NewMap(spec); err != nil {
				t.Fatal(err)
			}
			if other.FD() != fd {
				t.Fatalf("the new map has fd %d, not the closed one's %d: the test cannot check", other.FD(), fd)
			}
		}
		return false
	})
	if got := poll(t, tb); len(got) != 0 {
		t.Fatalf("sweep across the close: got %d changes (%v...), want none", len(got), got[0])
	}
	must(t, kept.Put(uint32(3), uint64(33)))
	want := []change{{snapshot.Updated, string(u32(3)), string(u64(3)), string(u64(33))}}
	if got := poll(t, tb); !slices.Equal(got, want) {
		t.Fatalf("poll after the close: got %v, want %v", got, want)
	}
}

// TestTableErrorMidSweep: a sweep fails after some batches were compared.
// The slots of those entries already hold the new values, so the next poll
// must compare every entry with its slot again, not trust the last complete
// sweep: here the values go back to what that sweep read, and the events
// must still bring a replay back to the map's contents.
func TestTableErrorMidSweep(t *testing.T) {
	m := newMap(t, &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1024})
	fill(t, m, 1000)
	tb, err := newTable(t, m, snapshot.Options{Batch: 64})
	must(t, err)
	replay := map[string]string{}
	apply := func(kind snapshot.Kind, key, old, new []byte) {
		if kind == snapshot.Deleted {
			delete(replay, string(key))
		} else {
			replay[string(key)] = string(new)
		}
	}
	must(t, second(tb.Poll(apply)))

	set := func(off uint64) {
		keys, vals := make([]uint32, 1000), make([]uint64, 1000)
		for i := range keys {
			keys[i], vals[i] = uint32(i), uint64(i)+off
		}
		if _, err := m.BatchUpdate(keys, vals, nil); err != nil {
			t.Fatal(err)
		}
	}
	set(1000000)
	calls := 0
	snapshot.BeforeBatch(tb, func() bool { calls++; return calls == 3 })
	n, err := tb.Poll(apply)
	if !errors.Is(err, unix.EINVAL) || n == 0 || n >= 1000 {
		t.Fatalf("failing poll: %d changes, %v; want those of two batches, then EINVAL", n, err)
	}
	set(0) // back to what the last complete sweep read
	must(t, second(tb.Poll(apply)))
	if got := contents(t, m); !maps.Equal(replay, got) || !maps.Equal(tableContents(tb), got) {
		t.Fatal("after the failed sweep, the replay or the table differs from the map")
	}
}
