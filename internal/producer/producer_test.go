package producer_test

import (
	"encoding/binary"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/perf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/bpfchan/bpfchan/internal/producer"
	"github.com/bpfchan/bpfchan/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newMap(t *testing.T, spec *ebpf.MapSpec) *ebpf.Map {
	t.Helper()
	testenv.RequireBPF(t)
	m, err := ebpf.NewMap(spec)
	if err != nil {
		t.Fatalf("create %s map: %v", spec.Type, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestRingRecordsCarrySequence(t *testing.T) {
	for _, size := range []int{8, 13, 16, 64, 256} {
		rb := newMap(t, &ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 1 << 16})
		p, err := producer.NewRing(rb, size)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if err := p.Run(100); err != nil {
			t.Fatal(err)
		}
		r, err := ringbuf.NewReader(rb)
		if err != nil {
			t.Fatal(err)
		}
		var rec ringbuf.Record
		for want := uint64(0); want < 100; want++ {
			if err := r.ReadInto(&rec); err != nil {
				t.Fatal(err)
			}
			if len(rec.RawSample) != size {
				t.Fatalf("size %d: record %d has %d bytes", size, want, len(rec.RawSample))
			}
			if got := binary.LittleEndian.Uint64(rec.RawSample); got != want {
				t.Fatalf("size %d: got seq %d, want %d", size, got, want)
			}
		}
		if got, _ := r.AvailableBytes(), 0; got != 0 {
			t.Fatalf("size %d: %d bytes left after 100 records", size, got)
		}
		r.Close()
		attempted, lost, err := p.Counts()
		if err != nil || attempted != 100 || lost != 0 {
			t.Fatalf("size %d: counts %d, %d, %v; want 100, 0, nil", size, attempted, lost, err)
		}
	}
}

func TestRingFullCountsLost(t *testing.T) {
	rb := newMap(t, &ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 4096})
	p, err := producer.NewRing(rb, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Run(1000); err != nil {
		t.Fatal(err)
	}
	attempted, lost, err := p.Counts()
	if err != nil || attempted != 1000 || lost == 0 || lost >= 1000 {
		t.Fatalf("counts %d, %d, %v; want 1000 attempts, some but not all lost", attempted, lost, err)
	}
}

func TestPushFIFO(t *testing.T) {
	q := newMap(t, &ebpf.MapSpec{Type: ebpf.Queue, ValueSize: 12, MaxEntries: 8})
	p, err := producer.NewPush(q)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Run(10); err != nil {
		t.Fatal(err)
	}
	_, lost, _ := p.Counts()
	if lost != 2 {
		t.Fatalf("lost %d, want 2 (queue of 8, 10 pushes)", lost)
	}
	v := make([]byte, 12)
	for want := uint64(0); want < 8; want++ {
		if err := q.LookupAndDelete(nil, &v); err != nil {
			t.Fatal(err)
		}
		if got := binary.LittleEndian.Uint64(v); got != want {
			t.Fatalf("got %d, want %d", got, want)
		}
	}
}

func TestHashAdd(t *testing.T) {
	for _, vs := range []uint32{4, 8} {
		m := newMap(t, &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: vs, MaxEntries: 4})
		p, err := producer.NewHashAdd(m, 7, 3)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if err := p.Run(1000); err != nil {
			t.Fatal(err)
		}
		v := make([]byte, vs)
		if err := m.Lookup(uint32(7), &v); err != nil {
			t.Fatal(err)
		}
		var got uint64
		if vs == 4 {
			got = uint64(binary.LittleEndian.Uint32(v))
		} else {
			got = binary.LittleEndian.Uint64(v)
		}
		if got != 3000 {
			t.Fatalf("value size %d: got %d, want 3000", vs, got)
		}
	}
}

func TestPerfSamples(t *testing.T) {
	m := newMap(t, &ebpf.MapSpec{Type: ebpf.PerfEventArray})
	p, err := producer.NewPerf(m, 24)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r, err := perf.NewReader(m, os.Getpagesize())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := p.Run(5); err != nil {
		t.Fatal(err)
	}
	for want := uint64(0); want < 5; want++ {
		rec, err := r.Read()
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.RawSample) < 24 || binary.LittleEndian.Uint64(rec.RawSample) != want {
			t.Fatalf("sample %d: %x", want, rec.RawSample)
		}
	}
}

func TestBadMaps(t *testing.T) {
	h := newMap(t, &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 2, MaxEntries: 1})
	for name, err := range map[string]error{
		"ring on hash": second(producer.NewRing(h, 8)),
		"push on hash": second(producer.NewPush(h)),
		"add 2-byte":   second(producer.NewHashAdd(h, 0, 1)),
		"ring nil":     second(producer.NewRing(nil, 8)),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// A gate's run holds its record reserved, asleep, until Open, then submits
// it; Close releases a run that is still waiting.
func TestGate(t *testing.T) {
	rb := newMap(t, &ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 4096})
	testenv.RequireKernelFaults(t)
	g, err := producer.NewRingGate(rb, 0xabcdef)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	if ok, err := g.Waiting(); ok || err != nil {
		t.Fatalf("Waiting before a run = %v, %v", ok, err)
	}
	r, err := ringbuf.NewReader(rb)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var rec ringbuf.Record
	for _, release := range []func() error{g.Open, g.Close} {
		if err := g.Start(); err != nil {
			t.Fatal(err)
		}
		if err := g.AwaitWaiting(); err != nil {
			t.Fatal(err)
		}
		if g.Ended() {
			t.Fatalf("the run ended (%v) while it waited", g.Wait())
		}
		// The record is in the ring, reserved. (Not read now: cilium's
		// reader spins on a reserved record, whatever its deadline.)
		if n := r.AvailableBytes(); n != 16 {
			t.Fatalf("the ring holds %d bytes, want one 8-byte record and its header", n)
		}
		if err := release(); err != nil {
			t.Fatal(err)
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		r.SetDeadline(time.Now().Add(30 * time.Second)) // a failure bound
		if err := r.ReadInto(&rec); err != nil {
			t.Fatal(err)
		}
		if got := binary.NativeEndian.Uint64(rec.RawSample); got != 0xabcdef {
			t.Fatalf("record %#x, want 0xabcdef", got)
		}
	}
	if err := g.Start(); err == nil {
		t.Fatal("Start after Close succeeded")
	}
}
