package main

import (
	"context"
	"errors"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/bpfchan/bpfchan/internal/codec"
	"github.com/bpfchan/bpfchan/internal/testenv"
)

// fillSyscalls is how many getppid calls fill the ring buffer per round
// (other processes add theirs): about 5 MiB of the 16 MiB ring.
const fillSyscalls = 100_000

// BenchmarkDrain measures the user side alone. Each round, the real tracer
// (tracing this process too) fills the ring buffer with this process's
// getppid calls and whatever else runs, then its gate is closed; the ring
// is then drained either by the program's pipeline.Group flow (count with
// Entry adds, pick, queue writer, queue pump, worker), or by a raw
// cilium/ebpf loop doing the same work (ReadInto, decode, one counter
// update per 256 events, pick, push and pop the important ones). Reported:
// ns per event for each, and flow/raw.
func BenchmarkDrain(b *testing.B) {
	testenv.RequireBPF(b)
	cfg, err := parseFlags(nil, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	var rawNs, flowNs time.Duration
	var rawEvents, flowEvents uint64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		tr, written := fill(b)
		b.StartTimer()
		start := time.Now()
		n := drainRaw(b, tr, &cfg)
		rawNs += time.Since(start)
		b.StopTimer()
		if n != written {
			b.Errorf("raw: drained %d events, the kernel wrote %d", n, written)
		}
		rawEvents += n
		tr.Close()

		tr, written = fill(b)
		b.StartTimer()
		start = time.Now()
		f, t := drainFlow(b, tr, &cfg, written)
		flowNs += time.Since(start)
		b.StopTimer()
		f.Stop()
		if err := f.Wait(); err != nil {
			b.Error(err)
		}
		if n := t.received.Load(); n != written {
			b.Errorf("flow: drained %d events, the kernel wrote %d", n, written)
		}
		flowEvents += written
		tr.Close()
	}
	rawPer := float64(rawNs.Nanoseconds()) / float64(max(rawEvents, 1))
	flowPer := float64(flowNs.Nanoseconds()) / float64(max(flowEvents, 1))
	b.ReportMetric(rawPer, "raw-ns/event")
	b.ReportMetric(flowPer, "flow-ns/event")
	b.ReportMetric(flowPer/rawPer, "x-raw")
}

// fill loads a tracer that also traces this process, makes fillSyscalls
// syscalls, closes the gate and returns how many events are in the ring.
func fill(b *testing.B) (*tracer, uint64) {
	tr, err := openTracer(true)
	if err != nil {
		b.Fatal(err)
	}
	for range fillSyscalls {
		syscall.Getppid()
	}
	runs, err := tr.Quiesce()
	if err != nil {
		tr.Close()
		b.Fatal(err)
	}
	ringFull, _, err := tr.kernelDrops()
	if err != nil {
		tr.Close()
		b.Fatal(err)
	}
	if ringFull > 0 {
		b.Logf("ring buffer full during the fill: %d events lost", ringFull)
	}
	return tr, runs - ringFull
}

// drainRaw does the flow's work with cilium/ebpf alone, and returns how many
// events it took out of the ring.
func drainRaw(b *testing.B, tr *tracer, cfg *config) uint64 {
	rd, err := ringbuf.NewReader(tr.objs.Events)
	if err != nil {
		b.Fatal(err)
	}
	defer rd.Close()
	rd.SetDeadline(time.Unix(1, 0)) // never wait: the ring is full already
	dec, err := codec.For[event]()
	if err != nil {
		b.Fatal(err)
	}
	var rec ringbuf.Record
	var e event
	var n uint64
	var picked []event
	for {
		err := rd.ReadInto(&rec)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		if err := dec.Decode(rec.RawSample, &e); err != nil {
			b.Fatal(err)
		}
		n++
		if n%256 == 0 || rec.Remaining == 0 {
			if err := tr.objs.Seen.Update(uint32(0), n, ebpf.UpdateAny); err != nil {
				b.Fatal(err)
			}
		}
		if cfg.isImportant(e.Nr) {
			picked = append(picked, e)
		}
	}
	for i := range picked {
		if err := tr.objs.Important.Update(nil, &picked[i], ebpf.UpdateAny); err != nil {
			b.Fatal(err)
		}
		if err := tr.objs.Important.LookupAndDelete(nil, &e); err != nil {
			b.Fatal(err)
		}
	}
	return n
}

// drainFlow starts the program's flow on the filled ring and returns once
// it has counted every event and worked every important one.
func drainFlow(b *testing.B, tr *tracer, cfg *config, written uint64) (flow, *tally) {
	t := newTally()
	f, err := startFlow(context.Background(), *cfg, tr, t)
	if err != nil {
		b.Fatal(err)
	}
	for pause := time.Microsecond; t.received.Load() < written || t.worked.Load() < t.important.Load(); pause = min(2*pause, time.Millisecond) {
		select {
		case <-f.Failed():
			b.Fatal(f.Wait())
		case <-time.After(pause):
		}
	}
	return f, t
}
