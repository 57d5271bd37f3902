package pump_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/chans"
	"github.com/bpfchan/bpfchan/pump"
)

// TestBadInput: each mistake is an error at construction that names the
// map and the problem, and starts no goroutine (TestMain checks).
func TestBadInput(t *testing.T) {
	ring := newRing(t, 4096)
	hash := newMap(t, &ebpf.MapSpec{Name: "test_hash", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	queue := newQueue(t, ebpf.Queue, 8, 4)
	cancelled, cancel := context.WithCancelCause(t.Context())
	cancel(errors.New("gone already"))
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		open func() error
		is   error
		says []string
	}{
		{"nil map", func() error { _, err := pump.RingBuf[rec16](ctx, nil); return err }, pump.ErrMapType, []string{"nil map", "RingBuf"}},
		{"hash to RingBuf", func() error { _, err := pump.RingBuf[rec16](ctx, hash); return err }, pump.ErrMapType, []string{"test_hash", "Hash", "RingBuf"}},
		{"ring to Queue", func() error { _, err := pump.Queue[uint64](ctx, ring); return err }, pump.ErrMapType, []string{"test_ring", "RingBuf", "Queue"}},
		{"queue to StackWriter", func() error { _, err := pump.StackWriter[uint64](ctx, queue); return err }, pump.ErrMapType, []string{"test_q", "Queue", "Stack"}},
		{"hash to Perf", func() error { _, err := pump.Perf[rec16](ctx, hash); return err }, pump.ErrMapType, []string{"test_hash", "PerfEventArray"}},
		{"queue value size", func() error { _, err := pump.Queue[rec16](ctx, queue); return err }, pump.ErrSize, []string{"test_q", "16", "8"}},
		{"writer value size", func() error { _, err := pump.QueueWriter[uint32](ctx, queue); return err }, pump.ErrSize, []string{"test_q", "4", "8"}},
		{"cancelled ctx", func() error { _, err := pump.RingBuf[rec16](cancelled, ring); return err }, nil, []string{"gone already"}},
		{"batch option on RingBuf", func() error {
			_, err := pump.RingBuf[rec16](ctx, ring, pump.WithBatch(8, time.Millisecond))
			return err
		}, pump.ErrOption, []string{"WithBatch"}},
		{"full policy on a source", func() error { _, err := pump.Queue[uint64](ctx, queue, pump.WithFull(pump.FullDrop)); return err }, pump.ErrOption, []string{"WithFull"}},
		{"overflow on a writer", func() error {
			_, err := pump.QueueWriter[uint64](ctx, queue, pump.WithOverflow(chans.DropNewest))
			return err
		}, pump.ErrOption, []string{"WithOverflow"}},
		{"drop-oldest without a buffer", func() error {
			_, err := pump.RingBuf[rec16](ctx, ring, pump.WithOverflow(chans.DropOldest))
			return err
		}, pump.ErrOption, []string{"drop-oldest", "WithBuffer"}},
		{"negative buffer", func() error { _, err := pump.RingBuf[rec16](ctx, ring, pump.WithBuffer(-1)); return err }, pump.ErrOption, []string{"WithBuffer(-1)"}},
		{"bad poll range", func() error {
			_, err := pump.Queue[uint64](ctx, queue, pump.WithPoll(time.Second, time.Millisecond))
			return err
		}, pump.ErrOption, []string{"WithPoll"}},
		{"decoder of another type", func() error {
			_, err := pump.RingBuf[rec16](ctx, ring, pump.WithDecoder(func([]byte) (int, error) { return 0, nil }))
			return err
		}, pump.ErrOption, []string{"WithDecoder", "rec16"}},
		{"type without a size", func() error { _, err := pump.RingBuf[string](ctx, ring); return err }, nil, []string{"string", "fixed binary size"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.open()
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q does not match %v", err, tc.is)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}
