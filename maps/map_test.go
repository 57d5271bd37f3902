package maps_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bpfchan/bpfchan/internal/testenv"
	bpfmaps "github.com/bpfchan/bpfchan/maps"
	"github.com/cilium/ebpf"
)

// mustClose closes c when the test ends, failing it on error.
func mustClose(tb testing.TB, c interface{ Close() error }) {
	tb.Helper()
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
}

// wantErr checks that err matches target and that its message contains
// every fragment.
func wantErr(tb testing.TB, err, target error, fragments ...string) {
	tb.Helper()
	if !errors.Is(err, target) {
		tb.Fatalf("got error %v, want one matching %v", err, target)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			tb.Errorf("got error %q, want it to contain %q", err, f)
		}
	}
}

// wantMsg checks that err is an error whose message contains every
// fragment, for errors that match no sentinel.
func wantMsg(tb testing.TB, err error, fragments ...string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("got no error, want one containing %q", fragments)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			tb.Errorf("got error %q, want it to contain %q", err, f)
		}
	}
}

func TestMapCRUD(t *testing.T) {
	testenv.RequireBPF(t)
	for _, typ := range []ebpf.MapType{ebpf.Hash, ebpf.LRUHash} {
		t.Run(typ.String(), func(t *testing.T) {
			m, err := bpfmaps.New[uint32, uint64](&ebpf.MapSpec{Name: "crud", Type: typ, MaxEntries: 16})
			if err != nil {
				t.Fatal(err)
			}
			mustClose(t, m)
			_, err = m.Lookup(1)
			wantErr(t, err, bpfmaps.ErrKeyNotExist, `"crud"`, "lookup")
			if err := m.Put(1, 10); err != nil {
				t.Fatal(err)
			}
			if got, err := m.Lookup(1); err != nil || got != 10 {
				t.Fatalf("Lookup(1) = %d, %v; want 10, nil", got, err)
			}
			if err := m.Put(1, 11); err != nil {
				t.Fatal(err)
			}
			wantErr(t, m.Insert(1, 12), bpfmaps.ErrKeyExist, `"crud"`, "insert")
			wantErr(t, m.Replace(2, 12), bpfmaps.ErrKeyNotExist, "replace")
			if err := m.Insert(2, 20); err != nil {
				t.Fatal(err)
			}
			if err := m.Replace(2, 21); err != nil {
				t.Fatal(err)
			}
			for k, want := range map[uint32]uint64{1: 11, 2: 21} {
				if got, err := m.Lookup(k); err != nil || got != want {
					t.Errorf("Lookup(%d) = %d, %v; want %d, nil", k, got, err, want)
				}
			}
			if err := m.Delete(1); err != nil {
				t.Fatal(err)
			}
			wantErr(t, m.Delete(1), bpfmaps.ErrKeyNotExist, `"crud"`, "delete")
			// The error also matches cilium's own sentinel.
			if _, err := m.Lookup(1); !errors.Is(err, ebpf.ErrKeyNotExist) {
				t.Errorf("got %v, want ebpf.ErrKeyNotExist", err)
			}
		})
	}
}

type point struct {
	X, Y int32
}

// padded has 3 bytes of padding: it goes through encoding/binary (9 bytes).
type padded struct {
	A uint8
	B uint32
	C uint32
}

// text is a BinaryMarshaler value of 8 bytes.
type text string

func (t text) MarshalBinary() ([]byte, error) {
	b := make([]byte, 8)
	copy(b, t)
	return b, nil
}

func (t *text) UnmarshalBinary(b []byte) error {
	*t = text(strings.TrimRight(string(b), "\x00"))
	return nil
}

func TestMapCodecs(t *testing.T) {
	testenv.RequireBPF(t)
	t.Run("struct", func(t *testing.T) {
		m, err := bpfmaps.NewHash[point, point](4)
		if err != nil {
			t.Fatal(err)
		}
		mustClose(t, m)
		if err := m.Put(point{1, 2}, point{3, 4}); err != nil {
			t.Fatal(err)
		}
		if got, err := m.Lookup(point{1, 2}); err != nil || got != (point{3, 4}) {
			t.Fatalf("got %v, %v; want {3 4}", got, err)
		}
	})
	t.Run("padded", func(t *testing.T) {
		m, err := bpfmaps.NewHash[padded, padded](4)
		if err != nil {
			t.Fatal(err)
		}
		mustClose(t, m)
		if ks, vs := m.Map().KeySize(), m.Map().ValueSize(); ks != 9 || vs != 9 {
			t.Fatalf("got sizes %d/%d, want 9/9 (no padding)", ks, vs)
		}
		k, v := padded{1, 2, 3}, padded{4, 5, 6}
		if err := m.Put(k, v); err != nil {
			t.Fatal(err)
		}
		if got, err := m.Lookup(k); err != nil || got != v {
			t.Fatalf("got %v, %v; want %v", got, err, v)
		}
		var err2 error
		for gk, gv := range m.All(&err2) {
			if gk != k || gv != v {
				t.Errorf("All yielded %v=%v, want %v=%v", gk, gv, k, v)
			}
		}
		if err2 != nil {
			t.Fatal(err2)
		}
	})
	t.Run("marshaler", func(t *testing.T) {
		m, err := bpfmaps.New[text, text](&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: 8, MaxEntries: 4})
		if err != nil {
			t.Fatal(err)
		}
		mustClose(t, m)
		if err := m.Put("key", "value"); err != nil {
			t.Fatal(err)
		}
		if got, err := m.Lookup("key"); err != nil || got != "value" {
			t.Fatalf("got %q, %v; want value", got, err)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		m, err := bpfmaps.New[[]byte, []byte](&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 3, ValueSize: 2, MaxEntries: 4})
		if err != nil {
			t.Fatal(err)
		}
		mustClose(t, m)
		if err := m.Put([]byte("abc"), []byte("xy")); err != nil {
			t.Fatal(err)
		}
		if got, err := m.Lookup([]byte("abc")); err != nil || string(got) != "xy" {
			t.Fatalf("got %q, %v; want xy", got, err)
		}
		wantErr(t, m.Put([]byte("abcd"), []byte("xy")), bpfmaps.ErrSizeMismatch, "4", "3")
		if err := m.Put([]byte("def"), []byte("zw")); err != nil {
			t.Fatal(err)
		}
		// Yielded slices are not reused by later elements.
		var ierr error
		var keys []string
		var held [][]byte
		for k := range m.All(&ierr) {
			held = append(held, k)
		}
		for _, k := range held {
			keys = append(keys, string(k))
		}
		slices.Sort(keys)
		if ierr != nil || !slices.Equal(keys, []string{"abc", "def"}) {
			t.Fatalf("All keys = %q, %v; want [abc def]", keys, ierr)
		}
	})
}

func TestArray(t *testing.T) {
	testenv.RequireBPF(t)
	m, err := bpfmaps.NewArray[uint64](4)
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, m)
	if got, err := m.Lookup(3); err != nil || got != 0 {
		t.Fatalf("Lookup(3) = %d, %v; want 0, nil (array elements always exist)", got, err)
	}
	if err := m.Put(3, 33); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Lookup(3); got != 33 {
		t.Fatalf("got %d, want 33", got)
	}
	tests := []struct {
		name string
		err  error
	}{
		{"lookup", func() error { _, err := m.Lookup(4); return err }()},
		{"put", m.Put(4, 1)},
		{"insert", m.Insert(100, 1)},
		{"delete", m.Delete(7)},
	}
	for _, tt := range tests {
		wantErr(t, tt.err, bpfmaps.ErrOutOfRange, tt.name, "index", "not below 4", "Array map")
	}
	wantErr(t, m.Insert(1, 1), bpfmaps.ErrKeyExist)
	wantErr(t, m.Delete(1), errors.ErrUnsupported, "array")
	if _, _, err := m.Drain(); err == nil {
		t.Fatal("Drain of an array: got no error")
	} else {
		wantErr(t, err, bpfmaps.ErrMapType, "drain", "Array map")
	}
	var ierr error
	if got := len(slices.Collect(m.Keys(&ierr))); got != 4 || ierr != nil {
		t.Fatalf("Keys after Drain = %d, %v; want 4", got, ierr)
	}
	n, err := m.Clear()
	if err != nil || n != 4 {
		t.Fatalf("Clear = %d, %v; want 4, nil", n, err)
	}
	if got, _ := m.Lookup(3); got != 0 {
		t.Fatalf("after Clear got %d, want 0", got)
	}
}

func TestHashFull(t *testing.T) {
	testenv.RequireBPF(t)
	m, err := bpfmaps.NewHash[uint32, uint32](2)
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, m)
	for i := range uint32(2) {
		if err := m.Put(i, i); err != nil {
			t.Fatal(err)
		}
	}
	err = m.Put(2, 2)
	wantErr(t, err, bpfmaps.ErrFull, "put", "Hash map")
	if strings.Contains(err.Error(), "argument list too long") {
		t.Errorf("got %q, want no E2BIG wording", err)
	}
	// Replacing a present key still works.
	if err := m.Put(1, 10); err != nil {
		t.Fatal(err)
	}
}

func TestLRUEvictsOldest(t *testing.T) {
	testenv.RequireBPF(t)
	const size = 64
	m, err := bpfmaps.NewLRUHash[uint32, uint32](size)
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, m)
	const total = 4 * size
	for i := range uint32(total) {
		if err := m.Put(i, i); err != nil {
			t.Fatalf("Put(%d): %v", i, err)
		}
	}
	// The kernel's LRU is approximate (per-CPU free lists, lazy rotation):
	// the newest keys are always there, the map never holds more than its
	// size, and nearly all of the first keys were evicted.
	for k := uint32(total - 8); k < total; k++ {
		if got, err := m.Lookup(k); err != nil || got != k {
			t.Fatalf("recent key %d: got %d, %v; want it present", k, got, err)
		}
	}
	var ierr error
	count, old := 0, 0
	for k := range m.Keys(&ierr) {
		count++
		if k < size {
			old++
		}
	}
	if ierr != nil || count == 0 || count > size {
		t.Fatalf("got %d keys (err %v), want 1..%d", count, ierr, size)
	}
	if old > size/2 {
		t.Fatalf("%d of the first %d keys survived %d newer puts, want them mostly evicted", old, size, total-size)
	}
}

func TestConstructorErrors(t *testing.T) {
	testenv.RequireBPF(t)
	hash, err := ebpf.NewMap(&ebpf.MapSpec{Name: "sized", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer hash.Close()
	queue, err := ebpf.NewMap(&ebpf.MapSpec{Name: "q", Type: ebpf.Queue, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer queue.Close()
	percpu, err := ebpf.NewMap(&ebpf.MapSpec{Name: "pc", Type: ebpf.PerCPUHash, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer percpu.Close()
	progs, err := ebpf.NewMap(&ebpf.MapSpec{Name: "progs", Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer progs.Close()
	closed, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()

	try := func(f func() (interface{ Close() error }, error)) error {
		c, err := f()
		if err == nil {
			c.Close()
		}
		return err
	}
	tests := []struct {
		name  string
		err   error
		want  error
		frags []string
	}{
		{"value size", try(func() (interface{ Close() error }, error) { return bpfmaps.Open[uint32, uint32](hash) }),
			bpfmaps.ErrSizeMismatch, []string{`"sized"`, "value size", "4 bytes", "map has 8"}},
		{"key size", try(func() (interface{ Close() error }, error) { return bpfmaps.Open[uint16, uint64](hash) }),
			bpfmaps.ErrSizeMismatch, []string{`"sized"`, "key size", "2 bytes", "map has 4"}},
		{"spec size", try(func() (interface{ Close() error }, error) {
			return bpfmaps.New[uint32, uint64](&ebpf.MapSpec{Name: "given", Type: ebpf.Hash, KeySize: 8, MaxEntries: 1})
		}), bpfmaps.ErrSizeMismatch, []string{`"given"`, "4 bytes", "map has 8"}},
		{"queue size", try(func() (interface{ Close() error }, error) { return bpfmaps.OpenQueue[uint32](queue) }),
			bpfmaps.ErrSizeMismatch, []string{`Queue map "q"`, "4 bytes", "map has 8"}},
		{"nil map", try(func() (interface{ Close() error }, error) { return bpfmaps.Open[uint32, uint64](nil) }),
			bpfmaps.ErrNilMap, nil},
		{"nil queue", try(func() (interface{ Close() error }, error) { return bpfmaps.OpenQueue[uint32](nil) }),
			bpfmaps.ErrNilMap, nil},
		{"closed map", try(func() (interface{ Close() error }, error) { return bpfmaps.Open[uint32, uint64](closed) }),
			bpfmaps.ErrClosed, []string{"open map", "Hash map"}},
		{"closed queue", try(func() (interface{ Close() error }, error) { return bpfmaps.OpenQueue[uint64](closed) }),
			bpfmaps.ErrClosed, nil},
		{"closed per-CPU", try(func() (interface{ Close() error }, error) { return bpfmaps.OpenPerCPU[uint32, uint64](closed) }),
			bpfmaps.ErrClosed, nil},
		{"nil spec", try(func() (interface{ Close() error }, error) { return bpfmaps.New[uint32, uint64](nil) }),
			bpfmaps.ErrNilMap, nil},
		{"queue as map", try(func() (interface{ Close() error }, error) { return bpfmaps.Open[uint32, uint64](queue) }),
			bpfmaps.ErrMapType, []string{`"q"`, "OpenQueue"}},
		{"hash as queue", try(func() (interface{ Close() error }, error) { return bpfmaps.OpenQueue[uint64](hash) }),
			bpfmaps.ErrMapType, []string{`Hash map "sized"`, "not a Queue map"}},
		{"per-CPU as map", try(func() (interface{ Close() error }, error) { return bpfmaps.Open[uint32, uint64](percpu) }),
			bpfmaps.ErrMapType, []string{`"pc"`, "OpenPerCPU"}},
		{"map as per-CPU", try(func() (interface{ Close() error }, error) { return bpfmaps.OpenPerCPU[uint32, uint64](hash) }),
			bpfmaps.ErrMapType, []string{`"sized"`}},
		// Slots of kernel objects: NextKey always finds slot 0 and an empty
		// slot cannot be deleted, so Clear would never end.
		{"program array", try(func() (interface{ Close() error }, error) { return bpfmaps.Open[uint32, uint32](progs) }),
			bpfmaps.ErrMapType, []string{`ProgramArray map "progs"`, "kernel objects"}},
		{"cgroup array", try(func() (interface{ Close() error }, error) {
			return bpfmaps.New[uint32, uint32](&ebpf.MapSpec{Name: "cg", Type: ebpf.CGroupArray, MaxEntries: 1})
		}), bpfmaps.ErrMapType, []string{`CGroupArray map "cg"`}},
		{"device map", try(func() (interface{ Close() error }, error) {
			return bpfmaps.New[uint32, uint32](&ebpf.MapSpec{Name: "dev", Type: ebpf.DevMap, MaxEntries: 1})
		}), bpfmaps.ErrMapType, []string{`DevMap map "dev"`}},
		{"CPU map", try(func() (interface{ Close() error }, error) {
			return bpfmaps.New[uint32, uint32](&ebpf.MapSpec{Name: "cpus", Type: ebpf.CPUMap, MaxEntries: 1})
		}), bpfmaps.ErrMapType, []string{`CPUMap map "cpus"`}},
		{"unknown type", try(func() (interface{ Close() error }, error) {
			return bpfmaps.New[uint32, uint64](&ebpf.MapSpec{Name: "odd", Type: ebpf.MapType(250), MaxEntries: 1})
		}), bpfmaps.ErrMapType, []string{`"odd"`, "250"}},
		{"no size", try(func() (interface{ Close() error }, error) {
			return bpfmaps.New[[]byte, uint64](&ebpf.MapSpec{Name: "raw", Type: ebpf.Hash, MaxEntries: 1})
		}), bpfmaps.ErrInvalidSize, []string{`"raw"`, "KeySize"}},
		{"ring size", try(func() (interface{ Close() error }, error) { return bpfmaps.NewRingBuf(3 * 4096) }),
			bpfmaps.ErrInvalidSize, []string{"12288", "power of two"}},
		{"ring small", try(func() (interface{ Close() error }, error) { return bpfmaps.NewRingBuf(1024) }),
			bpfmaps.ErrInvalidSize, []string{"1024"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, tt.err, tt.want, tt.frags...)
		})
	}
}

func TestOpenClones(t *testing.T) {
	testenv.RequireBPF(t)
	raw, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 4})
	if err != nil {
		t.Fatal(err)
	}
	m, err := bpfmaps.Open[uint32, uint64](raw)
	if err != nil {
		t.Fatal(err)
	}
	// The wrapper has its own descriptor: closing ours leaves it working.
	raw.Close()
	if err := m.Put(1, 2); err != nil {
		t.Fatalf("Put after the original was closed: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// An unnamed map is named by type and id.
	_, err = m.Lookup(1)
	wantErr(t, err, bpfmaps.ErrClosed, "lookup Hash map (id ")
}

func TestClosed(t *testing.T) {
	testenv.RequireBPF(t)
	m, err := bpfmaps.New[uint32, uint64](&ebpf.MapSpec{Name: "closing", Type: ebpf.Hash, MaxEntries: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var iterErr error
	for range m.All(&iterErr) {
		t.Fatal("closed map yielded an element")
	}
	_, drainErr := m.Clear()
	_, batchErr := m.BatchPut([]uint32{1}, []uint64{1})
	_, lookupErr := m.Lookup(1)
	tests := []struct {
		op  string
		err error
	}{
		{"lookup", lookupErr},
		{"put", m.Put(1, 1)},
		{"insert", m.Insert(1, 1)},
		{"delete", m.Delete(1)},
		{"iterate", iterErr},
		{"clear", drainErr},
		{"batch put", batchErr},
		{"pin", m.Pin("/sys/fs/bpf/x")},
	}
	for _, tt := range tests {
		wantErr(t, tt.err, bpfmaps.ErrClosed, tt.op, `"closing"`)
	}
}

// TestCloseRace runs operations while Close happens: each completes or
// reports ErrClosed (never EBADF), and the race detector stays quiet.
func TestCloseRace(t *testing.T) {
	testenv.RequireBPF(t)
	m, err := bpfmaps.NewHash[uint32, uint64](64)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			<-start
			for i := uint32(0); ; i++ {
				err := m.Put(i%64, uint64(g))
				if err == nil {
					_, err = m.Lookup(i % 64)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	close(start)
	// Let the workers get going: wait until one of them has written.
	for {
		if _, err := m.Lookup(0); err == nil {
			break
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, bpfmaps.ErrClosed) {
			t.Errorf("got %v, want ErrClosed", err)
		}
	}
}
