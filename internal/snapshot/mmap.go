package snapshot

import (
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// mapArray maps the shared memory of a BPF_F_MMAPABLE array read-only. The
// mapping is the Table's own, not cilium's Map.Memory(), which only copies
// out (ReadAt) and lives as long as the ebpf.Map: comparing the memory in
// place saves a copy of the whole array per poll. Elements are 8-byte
// aligned; the mapping keeps the kernel map alive until unmapArray, also
// once every descriptor of it is closed.
func mapArray(m *ebpf.Map) ([]byte, int, error) {
	stride := (int(m.ValueSize()) + 7) &^ 7
	page := os.Getpagesize()
	size := (int(m.MaxEntries())*stride + page - 1) / page * page
	mem, err := unix.Mmap(m.FD(), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, 0, fmt.Errorf("map shared memory: %w", err)
	}
	return mem[:int(m.MaxEntries())*stride], stride, nil
}

func unmapArray(mem []byte) error {
	if mem == nil {
		return nil
	}
	return unix.Munmap(mem[:cap(mem)])
}
