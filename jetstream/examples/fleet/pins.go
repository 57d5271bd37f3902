package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// pinPrefix starts the name of a run's pin directory, followed by the
// parent's pid: bpfchan-fleet-<pid>-<random>.
const pinPrefix = "bpfchan-fleet-"

// pinDir is the directory of one run's pins, on a bpffs.
type pinDir struct {
	Path    string // the run's directory; node N's pins are in Path/node-N
	base    string
	mounted bool // bpffs was mounted on base by this run
	// Stale lists the pin directories of earlier runs whose parent is
	// gone (killed before it could clean up), removed by newPinDir: their
	// pinned links kept probes attached.
	Stale []string
}

// newPinDir makes a run's pin directory under base, which must be a bpffs
// or an empty directory: on an empty directory (/sys/fs/bpf where nothing
// mounted bpffs) a bpffs is mounted first, and unmounted by remove if
// nothing else was pinned there meanwhile.
func newPinDir(base string) (*pinDir, error) {
	d := &pinDir{base: base}
	isBPF, err := isBPFFS(base)
	if err != nil {
		return nil, err
	}
	if !isBPF {
		if ents, err := os.ReadDir(base); err != nil || len(ents) > 0 {
			return nil, fmt.Errorf("%s is neither a bpffs nor an empty directory to mount one on", base)
		}
		if err := unix.Mount("bpf", base, "bpf", 0, "mode=0700"); err != nil {
			return nil, fmt.Errorf("%s is not a bpffs, and mounting one there failed: %w", base, err)
		}
		d.mounted = true
	}
	d.Stale = removeStale(base, pinPrefix)
	if d.Path, err = os.MkdirTemp(base, fmt.Sprintf("%s%d-", pinPrefix, os.Getpid())); err != nil {
		d.unmount()
		return nil, fmt.Errorf("make the pin directory: %w", err)
	}
	return d, nil
}

// Node returns node's pin directory, making it if need be.
func (d *pinDir) Node(node string) (string, error) {
	dir := filepath.Join(d.Path, node)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("make the pin directory of %s: %w", node, err)
	}
	return dir, nil
}

// remove removes the run's pins (a pinned link removed detaches its
// program once no process holds it) and unmounts the bpffs this run
// mounted, unless something else is pinned there now.
func (d *pinDir) remove() error {
	err := os.RemoveAll(d.Path)
	if err != nil {
		err = fmt.Errorf("remove the pins: %w", err)
	}
	return joinErrors(err, d.unmount())
}

func (d *pinDir) unmount() error {
	if !d.mounted {
		return nil
	}
	ents, err := os.ReadDir(d.base)
	if err != nil {
		return nil
	}
	for _, e := range ents {
		if !slices.Contains(preloaded, e.Name()) {
			return nil // another program pinned something there: leave it mounted
		}
	}
	if err := unix.Unmount(d.base, 0); err != nil {
		return fmt.Errorf("unmount the bpffs on %s: %w", d.base, err)
	}
	d.mounted = false
	return nil
}

// preloaded are the files the kernel puts into every new bpffs (the
// bpf_preload iterators), which a bpffs with nothing pinned still holds.
var preloaded = []string{"maps.debug", "progs.debug"}

// isBPFFS reports whether dir is on a bpffs.
func isBPFFS(dir string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false, fmt.Errorf("pin directory: %w", err)
	}
	return uint32(st.Type) == unix.BPF_FS_MAGIC, nil
}

// removeStale removes the directories in base named prefix<pid>-... whose
// process pid no longer exists (runs killed before they could clean up),
// and returns them.
func removeStale(base, prefix string) []string {
	ents, _ := os.ReadDir(base)
	var stale []string
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !e.IsDir() {
			continue
		}
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err != nil || pid == os.Getpid() || unix.Kill(pid, 0) != unix.ESRCH {
			continue
		}
		p := filepath.Join(base, e.Name())
		if os.RemoveAll(p) == nil {
			stale = append(stale, p)
		}
	}
	return stale
}
