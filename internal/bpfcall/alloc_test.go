package bpfcall

import (
	"testing"

	"github.com/cilium/ebpf"
)

// TestNoAllocs: no call allocates, whatever its answer.
func TestNoAllocs(t *testing.T) {
	q := newMap(t, ebpf.Queue, 0, 8, 4)
	h := newMap(t, ebpf.Hash, 4, 8, 4)
	p := newEchoProg(t)
	key, val, cursor, keys, vals, ctx := u32(1), u64(1), make([]byte, 4), make([]byte, 16), make([]byte, 32), make([]byte, 16)
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"push and pop", func() { Update(q.FD(), nil, val, 0); Pop(q.FD(), val) }},
		{"peek", func() { Peek(q.FD(), val); PeekRaw(q.FD(), val) }},
		{"update, lookup, delete", func() {
			Update(h.FD(), key, val, 0)
			Lookup(h.FD(), key, val, 0)
			LookupAndDelete(h.FD(), key, val, 0)
			Delete(h.FD(), key)
		}},
		{"next key", func() { NextKey(h.FD(), nil, cursor) }},
		{"lookup batch", func() { LookupBatch(h.FD(), nil, cursor, keys, vals, 4, 0) }},
		{"test run", func() { TestRun(p.FD(), ctx) }},
	} {
		if got := testing.AllocsPerRun(100, tc.f); got != 0 {
			t.Errorf("%s: got %v allocations per run, want 0", tc.name, got)
		}
	}
}
