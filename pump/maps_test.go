package pump_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bpfchan/bpfchan/maps"
	"github.com/bpfchan/bpfchan/pump"
)

// TestNilMapSentinels: every constructor given a nil map refuses it with
// one line that matches both maps.ErrNilMap and maps.ErrMapType, and says
// which map type it wanted.
func TestNilMapSentinels(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		err  error
		says string
	}{
		{"RingBuf", second(pump.RingBuf[uint64](ctx, nil)), "RingBuf map"},
		{"RingBufBatches", second(pump.RingBufBatches[uint64](ctx, nil)), "RingBuf map"},
		{"RingBufAcked", second(pump.RingBufAcked[uint64](ctx, nil)), "RingBuf map"},
		{"Perf", second(pump.Perf[uint64](ctx, nil)), "PerfEventArray map"},
		{"PerfSamples", second(pump.PerfSamples[uint64](ctx, nil)), "PerfEventArray map"},
		{"Queue", second(pump.Queue[uint64](ctx, nil)), "Queue map"},
		{"Stack", second(pump.Stack[uint64](ctx, nil)), "Stack map"},
		{"QueueWriter", second(pump.QueueWriter[uint64](ctx, nil)), "Queue map"},
		{"StackWriter", second(pump.StackWriter[uint64](ctx, nil)), "Stack map"},
		{"QueueChannel", second(pump.QueueChannel[uint64](ctx, nil)), "Queue map"},
		{"StackChannel", second(pump.StackChannel[uint64](ctx, nil)), "Stack map"},
		{"UserRingBuf", second(pump.UserRingBuf[uint64](ctx, nil)), "UserRingbuf map"},
	} {
		for _, want := range []error{maps.ErrNilMap, maps.ErrMapType, pump.ErrMapType} {
			if !errors.Is(tc.err, want) {
				t.Errorf("%s(nil): got %v, want an error matching %q", tc.name, tc.err, want)
			}
		}
		if tc.err == nil {
			continue
		}
		if msg := tc.err.Error(); !strings.Contains(msg, tc.says) || strings.Contains(msg, "\n") {
			t.Errorf("%s(nil): got %q, want one line naming a %s", tc.name, msg, tc.says)
		}
	}
}

func second[T any](_ T, err error) error { return err }
