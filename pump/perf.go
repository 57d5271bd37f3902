package pump

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/perf"
)

// Perf starts a pump that reads the per-CPU perf buffers of the perf event
// array m through cilium's perf.Reader and sends each sample, decoded into
// T, on C(). The kernel pads samples to 8 bytes: a sample decodes when it is
// at least the size of T and less than 8 bytes longer; other sizes are
// counted in Stats.DecodeErrors. Samples the kernel reports lost (a full
// per-CPU buffer) are counted in Stats.LostSamples. Samples are in order per
// CPU only: those written on different CPUs arrive in no defined order.
// Only one pump may read a perf array at a time (ErrBusy).
//
// Options: WithBuffer, WithOverflow, WithDecoder, WithPerfBuffer,
// WithWakeupEvents, WithDrainInterval. Unlike a ring-buffer pump, an idle
// perf pump blocks an OS thread in epoll_wait (cilium's reader has no
// netpoller integration).
func Perf[T any](ctx context.Context, m *ebpf.Map, opts ...Option) (*Source[T], error) {
	const what = "perf pump"
	r, err := openReader[T](ctx, what, m, ebpf.PerfEventArray, perfOpts, opts)
	if err != nil {
		return nil, err
	}
	mi, c, dec, release := r.mi, r.c, r.dec, r.release
	if size := r.size; size > 0 {
		// Trim the kernel's padding (DESIGN rule 6).
		exact := dec
		dec = func(b []byte, v *T) error {
			if len(b) >= size && len(b) < size+8 {
				b = b[:size]
			}
			return exact(b, v)
		}
	}
	rd, err := perf.NewReaderWithOptions(m, c.perfBytes, perf.ReaderOptions{WakeupEvents: c.wakeup})
	if err != nil {
		release()
		return nil, fmt.Errorf("%s: open reader on %s: %w", what, mi.name, err)
	}
	rd.SetDeadline(pastDeadline) // next never blocks; wait sets its own deadline
	s := &Source[T]{}
	f := &perfFeed{m: m, name: mi.name, rd: rd, drain: c.drain, n: &s.h.cnt, release: release, interrupted: newLatch()}
	start(ctx, c, f, dec, newSingle(c, s), s)
	return s, nil
}

// perfFeed drains cilium's perf reader with a deadline in the past, and
// waits in it with the drain interval as deadline; interrupt is its Flush.
type perfFeed struct {
	m           *ebpf.Map
	name        string
	rd          *perf.Reader
	rec         perf.Record
	hasRec      bool // rec holds a sample read by wait
	drain       time.Duration
	interrupted *latch
	n           *counters
	release     func() // gives up the map's reader registration

	held     bool  // graceful stop: read at most budget more buffer bytes
	relooked bool  // held, and an "empty" was looked past once
	budget   int64 // bytes left in every per-CPU buffer together
}

var pastDeadline = time.Unix(1, 0)

func (f *perfFeed) next() ([]byte, bool, error) {
	for {
		if f.held && f.budget <= 0 {
			return nil, false, nil
		}
		if f.hasRec {
			f.hasRec = false
		} else if err := f.rd.ReadInto(&f.rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, perf.ErrFlushed) {
				if f.held && !f.relooked {
					// cilium reports "empty" once the buffers are read
					// up to the heads it loaded at its last wait, maybe
					// before hold: look once more, at heads loaded now.
					f.relooked = true
					continue
				}
				return nil, false, nil
			}
			return nil, false, fmt.Errorf("read %s: %w", f.name, closedErr(err))
		}
		if f.rec.LostSamples > 0 {
			f.n.n.LostSamples += f.rec.LostSamples
			f.budget -= 24 // header, id, count
			continue
		}
		f.budget -= 12 + int64(len(f.rec.RawSample)) // header, size, padded data
		return f.rec.RawSample, true, nil
	}
}

func (f *perfFeed) wait(context.Context) error {
	if f.interrupted.isSet() {
		return errInterrupted
	}
	f.rd.SetDeadline(time.Now().Add(f.drain))
	err := f.rd.ReadInto(&f.rec)
	f.rd.SetDeadline(pastDeadline)
	switch {
	case err == nil:
		f.hasRec = true
	case errors.Is(err, perf.ErrFlushed):
		if f.interrupted.isSet() {
			return errInterrupted
		}
	case errors.Is(err, os.ErrDeadlineExceeded):
		if f.m.FD() < 0 {
			// cilium's reader keeps its own copy of the map: the periodic
			// drain is where a map the caller closed is noticed.
			return fmt.Errorf("read %s: %w", f.name, errClosed)
		}
	default:
		return fmt.Errorf("wait for %s: %w", f.name, closedErr(err))
	}
	return nil
}

func (f *perfFeed) interrupt() {
	if f.interrupted.set() {
		_ = f.rd.Flush()
	}
}

// hold limits the rest of the drain to what the per-CPU buffers can hold
// now; the drain also ends at the second "empty" (cilium reads each buffer
// up to the head it loaded at its last wait; the first may predate hold),
// so a producer that keeps up cannot delay Close.
func (f *perfFeed) hold() {
	cpus, err := ebpf.PossibleCPU()
	if err != nil || cpus > int(f.m.MaxEntries()) {
		cpus = int(f.m.MaxEntries())
	}
	f.held, f.budget = true, int64(f.rd.BufferSize())*int64(max(cpus, 1))
}

// pending: cilium's reader skips nothing it could read later.
func (f *perfFeed) pending() bool { return false }

func (f *perfFeed) close() error {
	defer f.release()
	return f.rd.Close()
}
