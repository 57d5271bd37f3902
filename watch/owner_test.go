package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/testenv"
	"github.com/bpfchan/bpfchan/maps"
)

// mapID returns m's kernel ID.
func mapID(tb testing.TB, m *ebpf.Map) ebpf.MapID {
	tb.Helper()
	info, err := m.Info()
	must(tb, err)
	id, ok := info.ID()
	if !ok {
		tb.Fatal("the kernel reports no map IDs")
	}
	return id
}

// mapFDs returns this process's descriptors of the map with that ID.
func mapFDs(tb testing.TB, id ebpf.MapID) []int {
	tb.Helper()
	dir := "/proc/self/fdinfo"
	ents, err := os.ReadDir(dir)
	must(tb, err)
	line := fmt.Appendf(nil, "\nmap_id:\t%d\n", id)
	var fds []int
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil || !bytes.Contains(b, line) {
			continue // gone, or ReadDir's own descriptor
		}
		fd, err := strconv.Atoi(e.Name())
		must(tb, err)
		fds = append(fds, fd)
	}
	return fds
}

// openFDs counts this process's open descriptors.
func openFDs(tb testing.TB) int {
	tb.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	must(tb, err)
	return len(ents)
}

// bpfMappings counts this process's mappings of BPF maps' memory.
func bpfMappings(tb testing.TB) int {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	must(tb, err)
	return bytes.Count(b, []byte("anon_inode:bpf-map\n"))
}

// breakClone makes the next poll of the watchers of the map with that ID
// fail: it puts /dev/null on their descriptors of it (all but those of
// keep), so the kernel answers that they are not maps. The watchers close
// /dev/null when they stop.
func breakClone(tb testing.TB, id ebpf.MapID, keep ...int) {
	tb.Helper()
	null, err := os.Open(os.DevNull)
	must(tb, err)
	defer null.Close()
	broken := 0
	for _, fd := range mapFDs(tb, id) {
		if !slices.Contains(keep, fd) {
			must(tb, unix.Dup3(int(null.Fd()), fd, unix.O_CLOEXEC))
			broken++
		}
	}
	if broken == 0 {
		tb.Fatalf("no watcher's descriptor of map %d to break", id)
	}
}

// TestWatcherOwnsItsClone: a watcher reads its own clone of the caller's
// map. Closing the caller's map neither stops nor disturbs it, also when
// another map then takes the closed descriptor number, and the watcher
// releases its clone (or its mapping of an mmapable array) when it stops.
func TestWatcherOwnsItsClone(t *testing.T) {
	for _, spec := range []ebpf.MapSpec{
		{Name: "owned", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 8},
		{Name: "owned", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 8},
		{Name: "owned", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 8, Flags: unix.BPF_F_MMAPABLE},
	} {
		t.Run(fmt.Sprintf("%s flags %#x", spec.Type, spec.Flags), func(t *testing.T) {
			testenv.RequireBPF(t)
			mmap := spec.Flags&unix.BPF_F_MMAPABLE != 0
			m, err := ebpf.NewMap(&spec)
			must(t, err)
			defer m.Close()
			kept, err := m.Clone() // the test's way to go on changing the map
			must(t, err)
			defer kept.Close()
			id := mapID(t, kept)
			mappings := bpfMappings(t)

			w, err := Map[uint32, uint64](context.Background(), m, WithInterval(forever))
			must(t, err)
			c, err := Changes[uint32, uint64](context.Background(), m, 1, WithInterval(forever))
			must(t, err)
			held, wantHeld := len(mapFDs(t, id))-2, 2 // the watchers' clones
			if mmap {
				held, wantHeld = bpfMappings(t)-mappings, 2 // their mappings, and no descriptor
				if n := len(mapFDs(t, id)); n != 2 {
					t.Errorf("%d descriptors of the map, want the test's 2", n)
				}
			}
			if held != wantHeld {
				t.Errorf("the watchers hold %d clones or mappings, want %d", held, wantHeld)
			}

			fd := m.FD()
			must(t, m.Close())
			other := mkMap(t, &spec) // a watcher on the reused number would read it
			if other.FD() != fd {
				t.Fatalf("the new map has fd %d, not the closed one's %d: the test cannot check", other.FD(), fd)
			}
			must(t, other.Put(uint32(1), uint64(666)))

			for _, v := range []uint64{10, 11} {
				must(t, kept.Put(uint32(1), v))
				step(t, w)
				step(t, c)
				old := v - 1
				if v == 10 {
					old = 0
				}
				want := Event[uint32, uint64]{Kind: Updated, Key: 1, Old: old, New: v}
				if v == 10 && spec.Type == ebpf.Hash {
					want.Kind = Added
				}
				if got := recv(t, w); got != want {
					t.Errorf("Map: got %v, want %v", got, want)
				}
				if got, want := recv(t, c), (Change[uint64]{Old: old, New: v, Present: true}); got != want {
					t.Errorf("Changes: got %+v, want %+v", got, want)
				}
			}

			closeWatcher(t, w)
			closeWatcher(t, c)
			if got := mapFDs(t, id); !slices.Equal(got, []int{kept.FD()}) {
				t.Errorf("after the watchers stopped, descriptors %v of the map are open, want only the test's %d", got, kept.FD())
			}
			if got := bpfMappings(t); got != mappings {
				t.Errorf("after the watchers stopped, %d mappings of BPF maps, want %d", got, mappings)
			}
		})
	}
}

// TestConstructionRefused: a closed map fails with ErrClosed, a nil map or
// one of a type that cannot be watched with ErrMapType; nothing is started
// and no descriptor stays open. Errors name the map.
func TestConstructionRefused(t *testing.T) {
	testenv.RequireBPF(t)
	closed, err := ebpf.NewMap(&ebpf.MapSpec{Name: "gone", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 8})
	must(t, err)
	must(t, closed.Close())
	queue := mkMap(t, &ebpf.MapSpec{Name: "jobs", Type: ebpf.Queue, ValueSize: 8, MaxEntries: 8})
	qname := fmt.Sprintf(`Queue map "jobs" (id %d)`, mapID(t, queue))

	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	fds := openFDs(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		m    *ebpf.Map
		want error
		says string
	}{
		{"closed", closed, maps.ErrClosed, "Hash map"},
		{"nil", nil, maps.ErrMapType, "nil map"},
		{"queue", queue, maps.ErrMapType, qname},
	} {
		for _, got := range []error{
			second(Key[uint32, uint64](ctx, tc.m, 1)),
			second(Changes[uint32, uint64](ctx, tc.m, 1)),
			second(Map[uint32, uint64](ctx, tc.m)),
		} {
			if !errors.Is(got, tc.want) || !strings.Contains(fmt.Sprint(got), tc.says) {
				t.Errorf("%s map: got %v, want %v saying %q", tc.name, got, tc.want, tc.says)
			}
		}
	}
	if got := openFDs(t); got != fds {
		t.Errorf("%d descriptors open after the refusals, want %d as before", got, fds)
	}
}

// TestDone: Done is open while the watcher runs and closed once its
// goroutine has exited, however it stopped.
func TestDone(t *testing.T) {
	m := hash(t, 8)
	id := mapID(t, m)
	cause := errors.New("shutting down")
	for _, tc := range []struct {
		name string
		stop func(w *Watcher[Event[uint32, uint64]], cancel context.CancelCauseFunc)
		want error
	}{
		{"Close", func(w *Watcher[Event[uint32, uint64]], _ context.CancelCauseFunc) { w.Close() }, nil}, // nothing pending: no consumer needed
		{"cancel", func(_ *Watcher[Event[uint32, uint64]], cancel context.CancelCauseFunc) { cancel(cause) }, cause},
		{"poll failure", func(w *Watcher[Event[uint32, uint64]], _ context.CancelCauseFunc) {
			breakClone(t, id, m.FD())
			w.pollNow()
		}, unix.EINVAL},
	} {
		ctx, cancel := context.WithCancelCause(context.Background())
		w, err := Map[uint32, uint64](ctx, m, WithInterval(forever))
		must(t, err)
		step(t, w)
		select {
		case <-w.Done():
			t.Fatalf("%s: Done closed while the watcher runs", tc.name)
		default:
		}
		tc.stop(w, cancel)
		<-w.Done()
		if _, ok := <-w.C(); ok {
			t.Errorf("%s: C open after Done", tc.name)
		}
		if err := w.Wait(); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: Wait after Done: got %v, want %v", tc.name, err, tc.want)
		}
		cancel(nil)
	}
}

// TestKeyOnArray: every index of an array exists, so Key returns the
// entry's value at its first look, without waiting for a change.
func TestKeyOnArray(t *testing.T) {
	for _, flags := range []uint32{0, unix.BPF_F_MMAPABLE} {
		m := mkMap(t, &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 4, Flags: flags})
		must(t, m.Put(uint32(2), uint64(20)))
		for _, tc := range []struct {
			key  uint32
			want uint64
		}{{2, 20}, {3, 0}} {
			misses := 0
			v, err := waitKey[uint32, uint64](context.Background(), m, tc.key, func() { misses++ }, WithInterval(forever))
			if err != nil || v != tc.want || misses != 0 {
				t.Errorf("flags %#x, index %d: got %d, %v after %d misses; want %d at the first look", flags, tc.key, v, err, misses, tc.want)
			}
		}
	}
}
