package ringread_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/producer"
	"github.com/bpfchan/bpfchan/internal/ringread"
	"github.com/bpfchan/bpfchan/internal/testenv"
)

func newUserRing(t *testing.T, size uint32) *ebpf.Map {
	t.Helper()
	testenv.RequireBPF(t)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "test_urb", Type: ebpf.UserRingbuf, MaxEntries: size})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func openUser(t *testing.T, m *ebpf.Map) *ringread.Writer {
	t.Helper()
	w, err := ringread.OpenUser(m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Error(err)
		}
	})
	return w
}

func newDrainer(t *testing.T, m *ebpf.Map) *producer.Drainer {
	t.Helper()
	d, err := producer.NewUserRingDrain(m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// drain runs d once and returns everything it has seen so far, failing
// the test when a drain call failed (the kernel refused our records).
func drain(t *testing.T, d *producer.Drainer) producer.DrainStats {
	t.Helper()
	if err := d.Run(1); err != nil {
		t.Fatal(err)
	}
	s, err := d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.Failed != 0 {
		t.Fatalf("%d drain calls failed, the last with errno %d", s.Failed, -s.LastErr)
	}
	return s
}

// write writes a record of size bytes (at least 8) starting with seq.
func write(t *testing.T, w *ringread.Writer, seq uint64, size int) bool {
	t.Helper()
	p, ok, err := w.Reserve(size)
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		binary.NativeEndian.PutUint64(p, seq)
		clear(p[8:])
	}
	return ok
}

// Records are the kernel's only once committed, and one commit hands over
// every record written before it.
func TestUserCommit(t *testing.T) {
	m := newUserRing(t, 4096)
	w := openUser(t, m)
	d := newDrainer(t, m)
	for i := range uint64(3) {
		if !write(t, w, i, 8) {
			t.Fatal("no room in an empty ring")
		}
	}
	if got, want := w.Uncommitted(), 3*16; got != want {
		t.Fatalf("Uncommitted = %d, want %d", got, want)
	}
	if s := drain(t, d); s.Records != 0 {
		t.Fatalf("the kernel drained %d uncommitted records", s.Records)
	}
	if !w.Commit() {
		t.Fatal("Commit reports nothing to commit")
	}
	if w.Commit() {
		t.Fatal("a second Commit reports records")
	}
	s := drain(t, d)
	if s.Records != 3 || s.Sum != 3 || s.Disorder != 0 {
		t.Fatalf("drained %+v, want records 0, 1, 2", s)
	}
	if got := w.Consumer(); got != w.Committed() {
		t.Fatalf("consumer position %d after the drain, want %d", got, w.Committed())
	}
}

// Every padding class: the kernel reads each record's own length (a record
// under 8 bytes is counted short), and a record takes its header and its
// payload padded to 8 bytes.
func TestUserSizes(t *testing.T) {
	m := newUserRing(t, 1<<16)
	w := openUser(t, m)
	d := newDrainer(t, m)
	for _, tc := range []struct {
		size  int
		space int
	}{
		{0, 8}, {1, 16}, {7, 16}, {8, 16}, {9, 24}, {15, 24}, {16, 24}, {255, 264},
	} {
		if got := ringread.RecordSize(tc.size); got != tc.space {
			t.Fatalf("RecordSize(%d) = %d, want %d", tc.size, got, tc.space)
		}
		free := w.Free()
		p, ok, err := w.Reserve(tc.size)
		if !ok || err != nil {
			t.Fatalf("Reserve(%d) = %v, %v", tc.size, ok, err)
		}
		if len(p) != tc.size {
			t.Fatalf("Reserve(%d) gave %d bytes", tc.size, len(p))
		}
		if tc.size >= 8 {
			binary.NativeEndian.PutUint64(p, 0)
		}
		if got := free - w.Free(); got != tc.space {
			t.Fatalf("a %d-byte record took %d bytes, want %d", tc.size, got, tc.space)
		}
	}
	w.Commit()
	s := drain(t, d)
	if s.Records != 5 || s.Short != 3 {
		t.Fatalf("drained %+v, want 5 records read and 3 short", s)
	}
}

// A full ring refuses a record, without writing anything, until a drain
// frees its space; Need and Reached say when it fits.
func TestUserFull(t *testing.T) {
	m := newUserRing(t, 4096)
	w := openUser(t, m)
	d := newDrainer(t, m)
	n := uint64(0)
	for write(t, w, n, 16) {
		n++
	}
	if want := uint64(4096 / 24); n != want {
		t.Fatalf("%d records of 24 bytes fit 4096, want %d", n, want)
	}
	need := w.Need(16)
	if w.Reached(need) {
		t.Fatal("Reached before any drain")
	}
	w.Commit()
	s := drain(t, d)
	if s.Records != n || s.Disorder != 0 {
		t.Fatalf("drained %+v, want %d records in order", s, n)
	}
	if !w.Reached(need) {
		t.Fatal("not Reached after the ring was drained")
	}
	if got := w.Free(); got != 4096 {
		t.Fatalf("Free = %d after a full drain, want 4096", got)
	}
}

// A record may fill the whole empty ring; one byte more is E2BIG, as is a
// record larger than a dynptr holds.
func TestUserTooBig(t *testing.T) {
	m := newUserRing(t, 4096)
	w := openUser(t, m)
	d := newDrainer(t, m)
	if got := w.MaxRecord(); got != 4088 {
		t.Fatalf("MaxRecord = %d, want 4088", got)
	}
	if _, ok, err := w.Reserve(4089); ok || !errors.Is(err, unix.E2BIG) {
		t.Fatalf("Reserve(4089) = %v, %v; want E2BIG", ok, err)
	}
	if !write(t, w, 0, 4088) {
		t.Fatal("a record filling the empty ring was refused")
	}
	if w.Free() != 0 {
		t.Fatalf("Free = %d, want 0", w.Free())
	}
	w.Commit()
	if s := drain(t, d); s.Records != 1 {
		t.Fatalf("drained %+v, want the one record", s)
	}

	big := newUserRing(t, 1<<25)
	wb := openUser(t, big)
	if got, want := wb.MaxRecord(), 1<<24-1; got != want {
		t.Fatalf("MaxRecord of a 32 MiB ring = %d, want %d (a dynptr's limit)", got, want)
	}
	if _, _, err := wb.Reserve(1 << 24); !errors.Is(err, unix.E2BIG) {
		t.Fatalf("Reserve(16 MiB) = %v, want E2BIG", err)
	}
}

// Thousands of records of mixed sizes through a one-page ring: records
// start at every 8-byte offset and straddle the end of the data area (the
// double mapping makes each one contiguous), and the kernel reads them all,
// in order.
func TestUserWrapAround(t *testing.T) {
	m := newUserRing(t, 4096)
	w := openUser(t, m)
	d := newDrainer(t, m)
	sizes := []int{8, 13, 24, 40, 57, 8, 100}
	seq := uint64(0)
	for round := range 200 {
		for k := range 20 {
			if !write(t, w, seq, sizes[(round+k)%len(sizes)]) {
				t.Fatalf("round %d: no room after a drain", round)
			}
			seq++
		}
		w.Commit()
		drain(t, d)
	}
	s := drain(t, d)
	if s.Records != seq || s.Disorder != 0 || s.Next != seq || s.Sum != seq*(seq-1)/2 {
		t.Fatalf("drained %+v, want %d records in order", s, seq)
	}
}

// A new Writer starts at the producer position the map has: what an
// earlier Writer committed stays, what it wrote without committing is
// written over.
func TestUserReopen(t *testing.T) {
	m := newUserRing(t, 4096)
	d := newDrainer(t, m)
	w, err := ringread.OpenUser(m)
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, 0, 8)
	write(t, w, 1, 8)
	w.Commit()
	write(t, w, 99, 8) // abandoned
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = openUser(t, m)
	write(t, w, 2, 8)
	w.Commit()
	if s := drain(t, d); s.Records != 3 || s.Disorder != 0 || s.Sum != 3 {
		t.Fatalf("drained %+v, want records 0, 1, 2", s)
	}
}

func TestUserOpenWrongType(t *testing.T) {
	m := newRing(t, 4096)
	if _, err := ringread.OpenUser(m); err == nil {
		t.Fatal("OpenUser of a kernel ring buffer: no error")
	}
}

// Writing and committing allocates nothing.
func TestUserNoAllocs(t *testing.T) {
	m := newUserRing(t, 1<<16)
	w := openUser(t, m)
	d := newDrainer(t, m)
	rec := make([]byte, 16)
	allocs := testing.AllocsPerRun(100, func() {
		if ok, err := w.Write(rec); !ok || err != nil {
			t.Fatal(ok, err)
		}
		w.Commit()
		w.Free()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per record, want 0", allocs)
	}
	drain(t, d)
}
