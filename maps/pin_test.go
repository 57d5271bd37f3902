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
	err = m.Pin(path)
	if err == nil {
		t.Fatal("pin outside bpffs: got no error")
	}
	wantErr(t, err, err, `"nowhere"`, path, "bpf filesystem")
}
