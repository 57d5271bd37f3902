package maps_test

import (
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/testenv"
	bpfmaps "github.com/bpfchan/bpfchan/maps"
)

// openers calls every Open* function of the package on m.
var openers = []struct {
	name string
	spec ebpf.MapSpec // a map each one accepts
	open func(*ebpf.Map) (made, error)
}{
	{"Open", ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1},
		func(m *ebpf.Map) (made, error) { return wrapped(bpfmaps.Open[uint32, uint64](m)) }},
	{"OpenQueue", ebpf.MapSpec{Type: ebpf.Queue, ValueSize: 8, MaxEntries: 1},
		func(m *ebpf.Map) (made, error) { return wrapped(bpfmaps.OpenQueue[uint64](m)) }},
	{"OpenStack", ebpf.MapSpec{Type: ebpf.Stack, ValueSize: 8, MaxEntries: 1},
		func(m *ebpf.Map) (made, error) { return wrapped(bpfmaps.OpenStack[uint64](m)) }},
	{"OpenPerCPU", ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1},
		func(m *ebpf.Map) (made, error) { return wrapped(bpfmaps.OpenPerCPU[uint32, uint64](m)) }},
	{"OpenMapOfMaps", ebpf.MapSpec{Type: ebpf.ArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 1, InnerMap: inner},
		func(m *ebpf.Map) (made, error) { return wrapped(bpfmaps.OpenMapOfMaps[uint32](m)) }},
	{"OpenBloomFilter", ebpf.MapSpec{Type: ebpf.BloomFilter, ValueSize: 8, MaxEntries: 1},
		func(m *ebpf.Map) (made, error) { return wrapped(bpfmaps.OpenBloomFilter[uint64](m)) }},
}

// Every Open* wraps an open map of its type, refuses one already closed
// with ErrClosed (naming its type) and a nil one with ErrNilMap, and leaves
// the caller's map open either way.
func TestOpenClosedOrNil(t *testing.T) {
	testenv.RequireBPF(t)
	for _, o := range openers {
		t.Run(o.name, func(t *testing.T) {
			m, err := ebpf.NewMap(&o.spec)
			if err != nil {
				t.Fatal(err)
			}
			w, err := o.open(m)
			if err != nil {
				t.Fatalf("open a live %v map: %v", o.spec.Type, err)
			}
			if err := w.close(); err != nil {
				t.Fatal(err)
			}
			if m.FD() < 0 {
				t.Fatal("closing the wrapper closed the caller's map")
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			_, err = o.open(m)
			wantErr(t, err, bpfmaps.ErrClosed, "open map", o.spec.Type.String()+" map")
			_, err = o.open(nil)
			wantErr(t, err, bpfmaps.ErrNilMap, "open map")
		})
	}
}
