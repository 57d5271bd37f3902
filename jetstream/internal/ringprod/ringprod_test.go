package ringprod_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/bpfchan/bpfchan/jetstream/internal/ringprod"
	"github.com/bpfchan/bpfchan/jetstream/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestRun: Run writes exactly n numbered records; a full ring counts the
// runs that did not fit as lost.
func TestRun(t *testing.T) {
	testenv.RequireBPF(t)
	rb, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	p, err := ringprod.New(rb, 24)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// 4096 bytes hold 127 records of 32 bytes (header included): the kernel
	// keeps the used space below the ring's size.
	for _, n := range []int{100, 50} {
		if err := p.Run(n); err != nil {
			t.Fatal(err)
		}
	}
	attempted, lost, err := p.Counts()
	if err != nil || attempted != 150 || lost != 23 {
		t.Fatalf("got %d attempted, %d lost (%v), want 150 and 23", attempted, lost, err)
	}
	r, err := ringbuf.NewReader(rb)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := range uint64(127) {
		rec, err := r.Read()
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if len(rec.RawSample) != 24 || binary.NativeEndian.Uint64(rec.RawSample) != i || binary.NativeEndian.Uint64(rec.RawSample[8:]) != 0 {
			t.Fatalf("record %d: got %x, want sequence %d then zeros", i, rec.RawSample, i)
		}
		if rec.Remaining == 0 && i != 126 {
			t.Fatalf("record %d: the ring is empty, want 127 records", i)
		}
	}
}

func TestBadInput(t *testing.T) {
	testenv.RequireBPF(t)
	arr, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer arr.Close()
	if _, err := ringprod.New(arr, 8); err == nil {
		t.Error("an array map: got no error")
	}
	if _, err := ringprod.New(nil, 8); err == nil {
		t.Error("a nil map: got no error")
	}
	rb, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	for _, size := range []int{0, 4, 12} {
		if p, err := ringprod.New(rb, size); err == nil {
			p.Close()
			t.Errorf("size %d: got no error", size)
		} else if errors.Is(err, ebpf.ErrNotSupported) {
			t.Errorf("size %d: got %v, want a size error", size, err)
		}
	}
}
