package bpfcall

import (
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// newMap creates a map for one test and closes it at the test's end.
func newMap(tb testing.TB, typ ebpf.MapType, keySize, valueSize, maxEntries uint32) *ebpf.Map {
	tb.Helper()
	testenv.RequireBPF(tb)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: typ, KeySize: keySize, ValueSize: valueSize, MaxEntries: maxEntries})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }
