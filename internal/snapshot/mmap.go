package snapshot

import (
	"fmt"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/bpfcall"
)

// mapArray maps the shared memory of a BPF_F_MMAPABLE array read-only. The
// mapping is the Table's own, not cilium's Map.Memory(), which only copies
// out (ReadAt) and lives as long as the ebpf.Map: comparing the memory in
// place saves a copy of the whole array per poll. Elements are 8-byte
// aligned; the mapping keeps the kernel map alive until unmapArray, also
// once every descriptor of it is closed.
func mapArray(m *ebpf.Map) ([]byte, int, error) {
	mem, stride, err := bpfcall.MmapArray(m.FD(), m.MaxEntries(), m.ValueSize(), unix.PROT_READ)
	if err != nil {
		return nil, 0, fmt.Errorf("map shared memory: %w", err)
	}
	return mem, stride, nil
}

func unmapArray(mem []byte) error { return bpfcall.MunmapArray(mem) }
