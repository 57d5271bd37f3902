package watch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/maps"
	"github.com/bpfchan/bpfchan/pump"
)

// TestSentinels: each refusal of a watcher's constructor matches the
// module's one sentinel for its meaning, on one line: a nil map
// (maps.ErrNilMap and ErrMapType), an array index out of range
// (maps.ErrOutOfRange), an invalid option (ErrOption, which is
// pump.ErrOption).
func TestSentinels(t *testing.T) {
	if ErrOption != pump.ErrOption {
		t.Errorf("watch.ErrOption is %v, want pump.ErrOption's value", ErrOption)
	}
	ctx := context.Background()
	h := mkMap(t, &ebpf.MapSpec{Name: "counts", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 8})
	arr := mkMap(t, &ebpf.MapSpec{Name: "arr", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 4})
	mm := mkMap(t, &ebpf.MapSpec{Name: "mm", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 4, Flags: unix.BPF_F_MMAPABLE})
	eq := func(a, b uint64) bool { return a == b }
	for _, tc := range []struct {
		name string
		err  error
		want []error
		says string
	}{
		{"Key nil map", second(Key[uint32, uint64](ctx, nil, 1)), []error{maps.ErrNilMap, ErrMapType}, "nil map"},
		{"Changes nil map", second(Changes[uint32, uint64](ctx, nil, 1)), []error{maps.ErrNilMap, ErrMapType}, "nil map"},
		{"Map nil map", second(Map[uint32, uint64](ctx, nil)), []error{maps.ErrNilMap, ErrMapType}, "nil map"},
		{"Key index 9 of 4", second(Key[uint32, uint64](ctx, arr, 9)), []error{maps.ErrOutOfRange}, `Array map "arr"`},
		{"Changes index 9 of 4", second(Changes[uint32, uint64](ctx, arr, 9)), []error{maps.ErrOutOfRange}, `Array map "arr"`},
		{"Key index 4 of 4, mmapable", second(Key[uint32, uint64](ctx, mm, 4)), []error{maps.ErrOutOfRange}, `Array map "mm"`},
		{"Changes index 4 of 4, mmapable", second(Changes[uint32, uint64](ctx, mm, 4)), []error{maps.ErrOutOfRange}, `Array map "mm"`},
		{"WithInterval(0)", second(Map[uint32, uint64](ctx, h, WithInterval(0))), []error{ErrOption, pump.ErrOption}, "WithInterval"},
		{"WithAdaptive(2s, 1s)", second(Map[uint32, uint64](ctx, h, WithAdaptive(2*time.Second, time.Second))), []error{ErrOption}, "WithAdaptive"},
		{"WithEqual(nil)", second(Changes[uint32, uint64](ctx, h, 1, WithEqual[uint64](nil))), []error{ErrOption}, "WithEqual(nil)"},
		{"WithEqual of another type", second(Map[uint32, uint64](ctx, h, WithEqual(func(a, b int64) bool { return a == b }))), []error{ErrOption}, "WithEqual"},
		{"WithInterval and WithAdaptive", second(Map[uint32, uint64](ctx, h, WithInterval(1), WithAdaptive(1, 2))), []error{ErrOption}, "both given"},
		{"Key WithInitial", second(Key[uint32, uint64](ctx, h, 1, WithInitial())), []error{ErrOption}, "do not apply to Key"},
		{"Key WithEqual", second(Key[uint32, uint64](ctx, h, 1, WithEqual(eq))), []error{ErrOption}, "do not apply to Key"},
	} {
		for _, want := range tc.want {
			if !errors.Is(tc.err, want) {
				t.Errorf("%s: got %v, want an error matching %q", tc.name, tc.err, want)
			}
		}
		if msg := fmt.Sprint(tc.err); !strings.Contains(msg, tc.says) || strings.Contains(msg, "\n") {
			t.Errorf("%s: got %q, want one line saying %q", tc.name, msg, tc.says)
		}
	}
}
