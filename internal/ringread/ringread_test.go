package ringread_test

import (
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/producer"
	"github.com/bpfchan/bpfchan/internal/ringread"
	"github.com/bpfchan/bpfchan/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newRing(t *testing.T, size uint32) *ebpf.Map {
	t.Helper()
	testenv.RequireBPF(t)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: size})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func open(t *testing.T, m *ebpf.Map) *ringread.Reader {
	t.Helper()
	r, err := ringread.Open(m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

func newProducer(t *testing.T, m *ebpf.Map, size int, opts ...producer.Option) *producer.Producer {
	t.Helper()
	p, err := producer.NewRing(m, size, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func run(t *testing.T, p *producer.Producer, n int) {
	t.Helper()
	if err := p.Run(n); err != nil {
		t.Fatal(err)
	}
}

func lost(t *testing.T, p *producer.Producer) uint64 {
	t.Helper()
	_, l, err := p.Counts()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// seq is the producer's sequence number at the start of rec (truncated to
// the record's size), after checking that the rest of rec is zero.
func seq(t *testing.T, rec []byte) uint64 {
	t.Helper()
	var b [8]byte
	copy(b[:], rec)
	for i, c := range rec[min(8, len(rec)):] {
		if c != 0 {
			t.Fatalf("byte %d of a %d-byte record is %#x, want 0", 8+i, len(rec), c)
		}
	}
	return binary.LittleEndian.Uint64(b[:])
}

// next returns the next record, failing the test when there is none.
func next(t *testing.T, r *ringread.Reader) []byte {
	t.Helper()
	rec, ok, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatal("Next: ring empty, want a record")
	}
	return rec
}

func wantEmpty(t *testing.T, r *ringread.Reader) {
	t.Helper()
	if rec, ok, err := r.Next(); ok || err != nil {
		t.Fatalf("Next = %d bytes, %v, %v; want an empty ring", len(rec), ok, err)
	}
	if n := r.Available(); n != 0 {
		t.Fatalf("Available = %d on an empty ring", n)
	}
}

// Records of every padding class come out whole, in order, with their own
// length (not the padded one).
func TestSizesAndOrder(t *testing.T) {
	m := newRing(t, 1<<16)
	r := open(t, m)
	sizes := []int{1, 7, 8, 9, 16, 255}
	for _, size := range sizes {
		run(t, newProducer(t, m, size), 3)
	}
	if got, want := r.Available(), 3*(8*len(sizes)+1+7+8+9+16+255+(7+1+0+7+0+1)); got != want {
		t.Fatalf("Available = %d, want %d (headers and padding included)", got, want)
	}
	for _, size := range sizes {
		for i := range 3 {
			rec := next(t, r)
			if len(rec) != size {
				t.Fatalf("record of %d bytes, want %d", len(rec), size)
			}
			want := uint64(i)
			if got := seq(t, rec); got != want {
				t.Fatalf("%d-byte record %d has seq %d", size, i, got)
			}
		}
	}
	wantEmpty(t, r)
}

// 3,000 records of 16 bytes (24 in the ring) through a one-page ring:
// over the rounds a record starts at every 8-byte offset, so headers sit
// at the very end of the data area with their payload wholly in the second
// mapping, and payloads straddle the end. Reading each round and
// publishing hands the space back (the producer never finds the ring full).
func TestWrapAround(t *testing.T) {
	m := newRing(t, 4096)
	r := open(t, m)
	p := newProducer(t, m, 16)
	want := uint64(0)
	for range 30 {
		run(t, p, 100) // 2,400 bytes: two rounds do not fit without a publish
		for range 100 {
			if got := seq(t, next(t, r)); got != want {
				t.Fatalf("seq %d, want %d", got, want)
			}
			want++
		}
		wantEmpty(t, r)
		r.Publish()
	}
	if l := lost(t, p); l != 0 {
		t.Fatalf("the producer lost %d records: space read and published was not handed back", l)
	}
}

// Next hands back the space of the records before the one it returns; the
// last one read keeps its space until Publish (or Close).
func TestPublish(t *testing.T) {
	m := newRing(t, 4096)
	r := open(t, m)
	p := newProducer(t, m, 40) // 48 bytes in the ring: 85 fit in 4,095
	run(t, p, 85)
	if l := lost(t, p); l != 0 {
		t.Fatalf("lost %d filling the ring", l)
	}
	for range 10 {
		next(t, r)
	}
	run(t, p, 9) // the space of the first nine
	if l := lost(t, p); l != 0 {
		t.Fatalf("lost %d records: Next did not hand back the space of the records before the last", l)
	}
	run(t, p, 1)
	if l := lost(t, p); l != 1 {
		t.Fatalf("lost %d records, want 1: the last record read keeps its space until Publish", l)
	}
	r.Publish()
	run(t, p, 1)
	if l := lost(t, p); l != 1 {
		t.Fatalf("lost %d records after Publish, want still 1", l)
	}
}

// Close publishes: a reader opened afterwards starts after the last record
// the first one read.
func TestClosePublishes(t *testing.T) {
	m := newRing(t, 1<<16)
	p := newProducer(t, m, 8)
	run(t, p, 5)
	r, err := ringread.Open(m)
	if err != nil {
		t.Fatal(err)
	}
	next(t, r)
	next(t, r)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r2 := open(t, m)
	if got := seq(t, next(t, r2)); got != 2 {
		t.Fatalf("a new reader starts at seq %d, want 2", got)
	}
}

// A consumer position the kernel could not have produced (here: written
// through our own mapping of the consumer page, a ring and a half behind)
// is reported as ErrCorrupt, not read past the mapping.
func TestCorruptPositions(t *testing.T) {
	m := newRing(t, 4096)
	run(t, newProducer(t, m, 8), 1)
	page, err := unix.Mmap(m.FD(), 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(page)
	*(*uint64)(unsafe.Pointer(&page[0])) -= 6144
	r := open(t, m)
	if _, _, err := r.Next(); !errors.Is(err, ringread.ErrCorrupt) {
		t.Fatalf("Next = %v, want ErrCorrupt", err)
	}
}

// Ready tells a committed record from an empty ring.
func TestReady(t *testing.T) {
	m := newRing(t, 4096)
	r := open(t, m)
	if r.Ready() {
		t.Fatal("Ready on an empty ring")
	}
	run(t, newProducer(t, m, 8), 1)
	if !r.Ready() {
		t.Fatal("not Ready with a committed record")
	}
	next(t, r)
	if r.Ready() {
		t.Fatal("Ready after the only record was read")
	}
}

// Discarded records take space in the ring but are never returned.
func TestDiscardSkipped(t *testing.T) {
	m := newRing(t, 1<<16)
	r := open(t, m)
	sub, dis := newProducer(t, m, 16), newProducer(t, m, 16, producer.Discard())
	run(t, sub, 2)
	run(t, dis, 3)
	run(t, sub, 2)
	run(t, dis, 3)
	for i := range uint64(4) {
		if got := seq(t, next(t, r)); got != i {
			t.Fatalf("seq %d, want %d", got, i)
		}
	}
	wantEmpty(t, r)
}

// NextBefore stops at its limit even when skipping discarded records
// takes the Reader there: the record after them was written later.
func TestNextBeforeStopsAtLimit(t *testing.T) {
	m := newRing(t, 1<<16)
	r := open(t, m)
	sub, dis := newProducer(t, m, 16), newProducer(t, m, 16, producer.Discard())
	run(t, sub, 1)
	run(t, dis, 2)
	limit := r.Head()
	run(t, sub, 1)
	if got := seq(t, nextBefore(t, r, limit)); got != 0 {
		t.Fatalf("seq %d, want 0", got)
	}
	if rec, ok, err := r.NextBefore(limit); ok || err != nil {
		t.Fatalf("NextBefore = %d bytes, %v, %v; want nothing at the limit", len(rec), ok, err)
	}
	if r.Pos() != limit {
		t.Fatalf("Pos = %d after the discarded records, want the limit %d", r.Pos(), limit)
	}
	if got := seq(t, next(t, r)); got != 1 {
		t.Fatalf("seq %d after the limit, want 1", got)
	}
}

func nextBefore(t *testing.T, r *ringread.Reader, limit uint64) []byte {
	t.Helper()
	rec, ok, err := r.NextBefore(limit)
	if err != nil || !ok {
		t.Fatalf("NextBefore = %v, %v; want a record", ok, err)
	}
	return rec
}

// A record still reserved stops the Reader at its start (not Ready, Next
// reports empty, Pos stays before it), and comes out once committed;
// records committed behind it wait for it.
func TestReservedRecord(t *testing.T) {
	m := newRing(t, 4096)
	r := open(t, m)
	testenv.RequireKernelFaults(t)
	g, err := producer.NewRingGate(m, 0xfeed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	if err := g.AwaitWaiting(); err != nil {
		t.Fatal(err)
	}
	run(t, newProducer(t, m, 8), 1) // committed, behind the reserved one
	if r.Ready() {
		t.Fatal("Ready with the first record reserved")
	}
	if rec, ok, err := r.NextBefore(r.Head()); ok || err != nil {
		t.Fatalf("NextBefore = %d bytes, %v, %v; want nothing while reserved", len(rec), ok, err)
	}
	if r.Pos() != 0 {
		t.Fatalf("Pos = %d, want 0 (the reserved record's start)", r.Pos())
	}
	if err := g.Open(); err != nil {
		t.Fatal(err)
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := binary.NativeEndian.Uint64(next(t, r)); got != 0xfeed {
		t.Fatalf("first record %#x, want the gate's 0xfeed", got)
	}
	if got := seq(t, next(t, r)); got != 0 {
		t.Fatalf("second record seq %d, want 0", got)
	}
	wantEmpty(t, r)
}

// The mappings keep the kernel map alive after the caller closed its
// *ebpf.Map (the producer program holds it too).
func TestOutlivesMapFD(t *testing.T) {
	m := newRing(t, 1<<16)
	r := open(t, m)
	p := newProducer(t, m, 8)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	run(t, p, 1)
	if got := seq(t, next(t, r)); got != 0 {
		t.Fatalf("seq %d, want 0", got)
	}
}

func TestOpenWrongType(t *testing.T) {
	testenv.RequireBPF(t)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	_, err = ringread.Open(m)
	if err == nil || !strings.Contains(err.Error(), "not a RingBuf map") {
		t.Fatalf("Open(hash map) = %v, want an error saying it is not a ring buffer", err)
	}
}

func TestCloseTwice(t *testing.T) {
	r, err := ringread.Open(newRing(t, 4096))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
}
