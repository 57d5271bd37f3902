package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/bpfchan/bpfchan/jetstream/internal/testenv"
)

// TestPinDir: on an empty directory that is no bpffs (/sys/fs/bpf where
// nothing mounted one), a bpffs is mounted, and unmounted at the end; a
// bpffs is used as it is, and the pin directories of runs whose parent is
// gone are removed.
func TestPinDir(t *testing.T) {
	testenv.RequireBPF(t)
	t.Run("mounted", func(t *testing.T) {
		base := t.TempDir()
		d, err := newPinDir(base)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := isBPFFS(d.Path); !ok || err != nil {
			t.Errorf("got %s on a bpffs %v (%v), want true", d.Path, ok, err)
		}
		if _, err := d.Node("node-1"); err != nil {
			t.Fatal(err)
		}
		if err := d.remove(); err != nil {
			t.Fatal(err)
		}
		if ok, err := isBPFFS(base); ok || err != nil {
			t.Errorf("after remove: got %s on a bpffs %v (%v), want it unmounted", base, ok, err)
		}
	})
	t.Run("not empty", func(t *testing.T) {
		base := t.TempDir()
		if err := os.WriteFile(filepath.Join(base, "f"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if d, err := newPinDir(base); err == nil {
			d.remove()
			t.Errorf("newPinDir(%s) with a file in it: no error, want one", base)
		}
	})
	t.Run("bpffs", func(t *testing.T) {
		base := testenv.BPFFS(t)
		gone := filepath.Join(base, fmt.Sprintf("%s%d-x", pinPrefix, 1<<30)) // no pid is that high
		mine := filepath.Join(base, fmt.Sprintf("%s%d-x", pinPrefix, os.Getpid()))
		for _, dir := range []string{gone, mine} {
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		d, err := newPinDir(base)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Stale) != 1 || d.Stale[0] != gone {
			t.Errorf("got stale %q, want %q", d.Stale, gone)
		}
		if err := d.remove(); err != nil {
			t.Fatal(err)
		}
		if got := pinned(t, base); len(got) != 1 || filepath.Join(base, got[0]) != mine {
			t.Errorf("after remove: got %q in %s, want only %s", got, base, mine)
		}
		if ok, _ := isBPFFS(base); !ok {
			t.Errorf("after remove: %s was unmounted, want the bpffs it had", base)
		}
		os.Remove(mine)
	})
}
