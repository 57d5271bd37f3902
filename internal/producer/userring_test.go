package producer_test

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/producer"
	"github.com/bpfchan/bpfchan/internal/ringread"
)

func newUserRing(t *testing.T, size uint32) *ebpf.Map {
	t.Helper()
	return newMap(t, &ebpf.MapSpec{Name: "test_urb", Type: ebpf.UserRingbuf, MaxEntries: size})
}

func newDrainer(t *testing.T, m *ebpf.Map, opts ...producer.Option) *producer.Drainer {
	t.Helper()
	d, err := producer.NewUserRingDrain(m, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func openWriter(t *testing.T, m *ebpf.Map) *ringread.Writer {
	t.Helper()
	w, err := ringread.OpenUser(m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// put writes and commits records of size bytes carrying seqs (a record
// under 8 bytes carries nothing).
func put(t *testing.T, w *ringread.Writer, size int, seqs ...uint64) {
	t.Helper()
	for _, s := range seqs {
		p, ok, err := w.Reserve(size)
		if !ok || err != nil {
			t.Fatalf("reserve %d bytes: %v, %v", size, ok, err)
		}
		clear(p)
		if size >= 8 {
			binary.NativeEndian.PutUint64(p, s)
		}
	}
	w.Commit()
}

func stats(t *testing.T, d *producer.Drainer) producer.DrainStats {
	t.Helper()
	s, err := d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The drainer counts, sums and checks the order of what it reads, tells
// short records apart, and counts its calls.
func TestDrainerCounts(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
		seqs []uint64
		want producer.DrainStats
	}{
		{"in order", 8, []uint64{0, 1, 2, 3}, producer.DrainStats{Records: 4, Sum: 6, Next: 4, Calls: 1}},
		{"long records", 64, []uint64{0, 1}, producer.DrainStats{Records: 2, Sum: 1, Next: 2, Calls: 1}},
		{"a gap", 8, []uint64{0, 1, 5, 6}, producer.DrainStats{Records: 4, Sum: 12, Next: 7, Disorder: 1, Calls: 1}},
		{"a repeat", 16, []uint64{0, 0}, producer.DrainStats{Records: 2, Sum: 0, Next: 1, Disorder: 1, Calls: 1}},
		{"short", 4, []uint64{0, 0, 0}, producer.DrainStats{Short: 3, Calls: 1}},
		{"empty ring", 8, nil, producer.DrainStats{Calls: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newUserRing(t, 4096)
			d := newDrainer(t, m)
			put(t, openWriter(t, m), tc.size, tc.seqs...)
			if err := d.Run(1); err != nil {
				t.Fatal(err)
			}
			if got := stats(t, d); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// Until runs the drainer until it has read what was asked, or ctx ends.
func TestDrainerUntil(t *testing.T) {
	m := newUserRing(t, 4096)
	d := newDrainer(t, m)
	put(t, openWriter(t, m), 8, 0, 1, 2)
	if err := d.Until(t.Context(), 3, 4); err != nil {
		t.Fatal(err)
	}
	if s := stats(t, d); s.Records != 3 {
		t.Fatalf("read %d records, want 3", s.Records)
	}
	ctx, cancel := context.WithCancelCause(t.Context())
	cause := errors.New("enough")
	cancel(cause)
	if err := d.Until(ctx, 4, 4); err != cause {
		t.Fatalf("Until with a cancelled ctx: %v, want %v", err, cause)
	}
}

// A drain that took records wakes a writer waiting for EPOLLOUT; with
// NoWakeup it does not.
func TestDrainerWakeup(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []producer.Option
		want int
	}{
		{"wakeup", nil, 1},
		{"no wakeup", []producer.Option{producer.NoWakeup()}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newUserRing(t, 4096)
			d := newDrainer(t, m, tc.opts...)
			w := openWriter(t, m)
			ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(ep)
			ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLET, Fd: int32(m.FD())}
			if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, m.FD(), &ev); err != nil {
				t.Fatal(err)
			}
			events := make([]unix.EpollEvent, 1)
			if n, err := unix.EpollWait(ep, events, 0); n != 1 || err != nil {
				t.Fatalf("an empty ring is writable: epoll_wait = %d, %v; want its event", n, err)
			}
			put(t, w, 8, 0, 1)
			if err := d.Run(1); err != nil {
				t.Fatal(err)
			}
			if s := stats(t, d); s.Records != 2 {
				t.Fatalf("drained %d records, want 2", s.Records)
			}
			// The wake-up is an irq_work: it may run a moment after the
			// drain returned, so wait for it (bounded; the test fails
			// only on an event that should not come, or none that should).
			timeout := 0
			if tc.want > 0 {
				timeout = 10_000
			}
			n, err := unix.EpollWait(ep, events, timeout)
			for errors.Is(err, unix.EINTR) {
				n, err = unix.EpollWait(ep, events, timeout)
			}
			if err != nil || n != tc.want {
				t.Fatalf("epoll_wait after the drain = %d, %v; want %d events", n, err, tc.want)
			}
		})
	}
}

// A worker counts like a drainer; its work is bounded.
func TestUserRingWorker(t *testing.T) {
	m := newUserRing(t, 4096)
	d, err := producer.NewUserRingWorker(m, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	put(t, openWriter(t, m), 8, 0, 1, 2)
	if err := d.Run(1); err != nil {
		t.Fatal(err)
	}
	if got, want := stats(t, d), (producer.DrainStats{Records: 3, Sum: 3, Next: 3, Calls: 1}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for _, work := range []int{0, 4097} {
		if _, err := producer.NewUserRingWorker(m, work); err == nil {
			t.Errorf("a worker of %d iterations: no error", work)
		}
	}
}

func TestDrainerNeedsUserRing(t *testing.T) {
	m := newMap(t, &ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 4096})
	if _, err := producer.NewUserRingDrain(m); err == nil {
		t.Fatal("a drainer of a kernel ring buffer: no error")
	}
}
