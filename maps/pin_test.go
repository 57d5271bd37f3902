package maps_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/bpfchan/bpfchan/internal/testenv"
	bpfmaps "github.com/bpfchan/bpfchan/maps"
	"github.com/cilium/ebpf"
)

func TestPinReopen(t *testing.T) {
	dir := testenv.BPFFS(t)
	path := filepath.Join(dir, "counts")
	m, err := bpfmaps.New[uint32, uint64](&ebpf.MapSpec{Name: "counts", Type: ebpf.Hash, MaxEntries: 8})
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint32(5) {
		if err := m.Put(i, uint64(i*i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Pin(path); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	again, err := bpfmaps.LoadPinned[uint32, uint64](path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	for i := range uint32(5) {
		if got, err := again.Lookup(i); err != nil || got != uint64(i*i) {
			t.Errorf("reopened Lookup(%d) = %d, %v; want %d", i, got, err, i*i)
		}
	}
	// The path is taken now.
	other, err := bpfmaps.New[uint32, uint64](&ebpf.MapSpec{Name: "other", Type: ebpf.Hash, MaxEntries: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	wantErr(t, other.Pin(path), fs.ErrExist, `"other"`, path, "already taken")
	// Wrong sizes on reload.
	if _, err := bpfmaps.LoadPinned[uint32, uint32](path); !errors.Is(err, bpfmaps.ErrSizeMismatch) {
		t.Fatalf("got %v, want ErrSizeMismatch", err)
	}
	if _, err := bpfmaps.LoadPinned[uint32, uint64](filepath.Join(dir, "missing")); err == nil {
		t.Fatal("loading a missing pin: got no error")
	}
	if err := again.Unpin(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after Unpin: stat %s: %v, want fs.ErrNotExist", path, err)
	}
}

// TestPinConcurrent pins and unpins one Map from several goroutines (the
// race detector watches cilium's pin path): each Pin moves the one pin,
// each Unpin removes it, so nothing is left at the end.
func TestPinConcurrent(t *testing.T) {
	dir := testenv.BPFFS(t)
	m, err := bpfmaps.NewHash[uint32, uint64](1)
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, m)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 20 {
				if err := m.Pin(filepath.Join(dir, fmt.Sprintf("pin-%d-%d", g, i))); err != nil {
					t.Error(err)
					return
				}
				if err := m.Unpin(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	left, err := filepath.Glob(filepath.Join(dir, "pin-*"))
	if err != nil || len(left) != 0 {
		t.Fatalf("pins left: %v, %v; want none", left, err)
	}
}

func TestPinOutsideBPFFS(t *testing.T) {
	testenv.RequireBPF(t)
	m, err := bpfmaps.New[uint32, uint64](&ebpf.MapSpec{Name: "nowhere", Type: ebpf.Hash, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, m)
	path := filepath.Join(t.TempDir(), "pin")
	// cilium's error wraps no sentinel.
	wantMsg(t, m.Pin(path), `"nowhere"`, path, "bpf filesystem")
}

// TestPinEveryWrapper pins each kind of wrapper, loads it back with its
// LoadPinned function, reads what the first one wrote, and unpins.
func TestPinEveryWrapper(t *testing.T) {
	dir := testenv.BPFFS(t)
	inner := &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1}
	type wrapper interface {
		Pin(string) error
		Unpin() error
		Close() error
	}
	tests := []struct {
		name  string
		make  func() (wrapper, error)
		write func(w wrapper) error
		load  func(path string) (wrapper, error)
		read  func(w wrapper) error
	}{
		{"queue",
			func() (wrapper, error) { return bpfmaps.NewQueue[uint64](4) },
			func(w wrapper) error { return w.(*bpfmaps.Queue[uint64]).Push(7) },
			func(p string) (wrapper, error) { return bpfmaps.LoadPinnedQueue[uint64](p) },
			func(w wrapper) error { return want(w.(*bpfmaps.Queue[uint64]).Pop()) },
		},
		{"stack",
			func() (wrapper, error) { return bpfmaps.NewStack[uint64](4) },
			func(w wrapper) error { return w.(*bpfmaps.Stack[uint64]).Push(7) },
			func(p string) (wrapper, error) { return bpfmaps.LoadPinnedStack[uint64](p) },
			func(w wrapper) error { return want(w.(*bpfmaps.Stack[uint64]).Pop()) },
		},
		{"per-CPU",
			func() (wrapper, error) { return bpfmaps.NewPerCPUHash[uint32, uint64](4) },
			func(w wrapper) error { return w.(*bpfmaps.PerCPUMap[uint32, uint64]).Put(1, []uint64{7}) },
			func(p string) (wrapper, error) { return bpfmaps.LoadPinnedPerCPU[uint32, uint64](p) },
			func(w wrapper) error {
				v, err := w.(*bpfmaps.PerCPUMap[uint32, uint64]).Lookup(1)
				return want(bpfmaps.Sum(v), err)
			},
		},
		{"bloom",
			func() (wrapper, error) { return bpfmaps.NewBloomFilter[uint64](4, 0) },
			func(w wrapper) error { return w.(*bpfmaps.Bloom[uint64]).Push(7) },
			func(p string) (wrapper, error) { return bpfmaps.LoadPinnedBloomFilter[uint64](p) },
			func(w wrapper) error {
				if ok, err := w.(*bpfmaps.Bloom[uint64]).Contains(7); err != nil || !ok {
					return fmt.Errorf("Contains(7) = %v, %v; want true", ok, err)
				}
				return nil
			},
		},
		{"map of maps",
			func() (wrapper, error) { return bpfmaps.NewHashOfMaps[uint32](4, inner) },
			func(w wrapper) error {
				m, err := ebpf.NewMap(inner)
				if err != nil {
					return err
				}
				defer m.Close()
				return w.(*bpfmaps.MapOfMaps[uint32]).Put(1, m)
			},
			func(p string) (wrapper, error) { return bpfmaps.LoadPinnedMapOfMaps[uint32](p) },
			func(w wrapper) error {
				m, err := w.(*bpfmaps.MapOfMaps[uint32]).Lookup(1)
				if err != nil {
					return err
				}
				return m.Close()
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "wrapper")
			w, err := tt.make()
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.write(w); err != nil {
				t.Fatal(err)
			}
			if err := w.Pin(path); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			again, err := tt.load(path)
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			if err := tt.read(again); err != nil {
				t.Fatalf("reloaded: %v", err)
			}
			if err := again.Unpin(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("after Unpin: stat: %v, want fs.ErrNotExist", err)
			}
		})
	}
	// A pinned map of another type is refused.
	q, err := bpfmaps.NewQueue[uint64](1)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	path := filepath.Join(dir, "queue")
	if err := q.Pin(path); err != nil {
		t.Fatal(err)
	}
	defer q.Unpin()
	_, err = bpfmaps.LoadPinnedStack[uint64](path)
	wantErr(t, err, bpfmaps.ErrMapType, "not a Stack map")
}

// want is nil when v is 7 and err nil.
func want(v uint64, err error) error {
	if err != nil || v != 7 {
		return fmt.Errorf("got %d, %v; want 7", v, err)
	}
	return nil
}
