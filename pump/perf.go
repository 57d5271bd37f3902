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
// counted in Stats.DecodeErrors. Samples are in order per CPU only: those
// written on different CPUs arrive in no defined order ([PerfSamples] tells
// each sample's CPU). Only one pump may read a perf array at a time
// (ErrBusy).
//
// Samples the kernel could not write (a full per-CPU buffer) are counted in
// Stats.LostSamples, but the kernel reports such a loss only with the next
// sample that fits in that CPU's buffer: losses at the very end of a burst
// show once a later sample is written, and a graceful Close reads the
// buffers once more to count what was reported by then.
//
// Options: WithBuffer, WithOverflow, WithDecoder, WithPerfBuffer,
// WithWakeupEvents, WithDrainInterval. Unlike a ring-buffer pump, an idle
// perf pump blocks an OS thread in epoll_wait (cilium's reader has no
// netpoller integration).
func Perf[T any](ctx context.Context, m *ebpf.Map, opts ...Option) (*Source[T], error) {
	r, f, err := openPerf[T](ctx, "perf pump", m, opts)
	if err != nil {
		return nil, err
	}
	s := &Source[T]{}
	f.n = &s.h.cnt
	start(ctx, r.c, f, r.dec, newSingle(r.c, s), s)
	return s, nil
}

// Sample is a perf sample with the CPU whose buffer it came from: samples of
// one CPU arrive in the order they were written, so a consumer that needs
// an order across CPUs sorts by a timestamp of its own within each CPU's
// stream.
type Sample[T any] struct {
	CPU   int
	Value T
}

// PerfSamples is Perf delivering each value with the CPU it was written on.
// A WithDecoder function decodes T, as for Perf.
func PerfSamples[T any](ctx context.Context, m *ebpf.Map, opts ...Option) (*Source[Sample[T]], error) {
	r, f, err := openPerf[T](ctx, "perf pump", m, opts)
	if err != nil {
		return nil, err
	}
	dec := func(b []byte, v *Sample[T]) error {
		v.CPU = f.rec.CPU
		return r.dec(b, &v.Value)
	}
	c := r.c
	c.decoder = dec // not the codec's direct copy: the CPU is set per sample
	s := &Source[Sample[T]]{}
	f.n = &s.h.cnt
	start(ctx, c, f, dec, newSingle(c, s), s)
	return s, nil
}

func openPerf[T any](ctx context.Context, what string, m *ebpf.Map, opts []Option) (reader[T], *perfFeed, error) {
	r, err := openReader[T](ctx, what, m, ebpf.PerfEventArray, perfOpts, opts)
	if err != nil {
		return r, nil, err
	}
	if size := r.size; size > 0 {
		// Trim the kernel's padding (DESIGN rule 6).
		exact := r.dec
		r.dec = func(b []byte, v *T) error {
			if len(b) >= size && len(b) < size+8 {
				b = b[:size]
			}
			return exact(b, v)
		}
	}
	rd, err := perf.NewReaderWithOptions(r.mi.m, r.c.perfBytes, perf.ReaderOptions{WakeupEvents: r.c.wakeup})
	if err != nil {
		r.release()
		r.mi.m.Close()
		return r, nil, fmt.Errorf("%s: open reader on %s: %w", what, r.mi.name, err)
	}
	rd.SetDeadline(pastDeadline) // next never blocks; wait sets its own deadline
	f := &perfFeed{m: r.mi.m, name: r.mi.name, rd: rd, drain: r.c.drain, release: r.release, interrupted: newLatch()}
	return r, f, nil
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
		return nil
	}
	f.rd.SetDeadline(time.Now().Add(f.drain))
	err := f.rd.ReadInto(&f.rec)
	f.rd.SetDeadline(pastDeadline)
	switch {
	case err == nil:
		f.hasRec = true
	case errors.Is(err, perf.ErrFlushed):
	case errors.Is(err, os.ErrDeadlineExceeded):
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
	return firstErr(f.rd.Close(), f.m.Close())
}
