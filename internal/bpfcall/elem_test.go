package bpfcall

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// TestQueueStack pushes 1, 2, 3 with Update and a nil key, then peeks and
// pops until the map is empty: FIFO for a queue, LIFO for a stack, ENOENT
// once empty, E2BIG when full.
func TestQueueStack(t *testing.T) {
	for _, tc := range []struct {
		typ  ebpf.MapType
		want []uint64
	}{
		{ebpf.Queue, []uint64{1, 2, 3}},
		{ebpf.Stack, []uint64{3, 2, 1}},
	} {
		t.Run(tc.typ.String(), func(t *testing.T) {
			m := newMap(t, tc.typ, 0, 8, 3)
			fd := m.FD()
			for v := range uint64(3) {
				if e := Update(fd, nil, u64(v+1), unix.BPF_ANY); e != 0 {
					t.Fatalf("push %d: got %v, want success", v+1, e)
				}
			}
			if e := Update(fd, nil, u64(4), unix.BPF_ANY); e != unix.E2BIG {
				t.Fatalf("push to a full map: got %v, want E2BIG", e)
			}
			var got []uint64
			buf := make([]byte, 8)
			for {
				if e := Peek(fd, buf); e != 0 {
					if e != unix.ENOENT {
						t.Fatalf("peek: got %v, want success or ENOENT", e)
					}
					break
				}
				peeked := binary.NativeEndian.Uint64(buf)
				clear(buf)
				if e := PeekRaw(fd, buf); e != 0 || binary.NativeEndian.Uint64(buf) != peeked {
					t.Fatalf("raw peek: got %d, %v; want %d", binary.NativeEndian.Uint64(buf), e, peeked)
				}
				clear(buf)
				if e := Pop(fd, buf); e != 0 {
					t.Fatalf("pop after a peek of %d: got %v, want success", peeked, e)
				}
				if v := binary.NativeEndian.Uint64(buf); v != peeked {
					t.Fatalf("pop: got %d, want the peeked %d", v, peeked)
				}
				got = append(got, peeked)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if e := Pop(fd, buf); e != unix.ENOENT {
				t.Errorf("pop of an empty map: got %v, want ENOENT", e)
			}
		})
	}
}

// TestHash drives every element call on a hash map and checks the map
// through cilium/ebpf after each step.
func TestHash(t *testing.T) {
	m := newMap(t, ebpf.Hash, 4, 8, 4)
	fd := m.FD()
	val := make([]byte, 8)
	steps := []struct {
		name string
		call func() unix.Errno
		want unix.Errno
	}{
		{"lookup missing", func() unix.Errno { return Lookup(fd, u32(1), val, 0) }, unix.ENOENT},
		{"update exist on missing", func() unix.Errno { return Update(fd, u32(1), u64(10), unix.BPF_EXIST) }, unix.ENOENT},
		{"insert 1", func() unix.Errno { return Update(fd, u32(1), u64(10), unix.BPF_NOEXIST) }, 0},
		{"insert 1 again", func() unix.Errno { return Update(fd, u32(1), u64(11), unix.BPF_NOEXIST) }, unix.EEXIST},
		{"insert 2", func() unix.Errno { return Update(fd, u32(2), u64(20), unix.BPF_ANY) }, 0},
		{"replace 2", func() unix.Errno { return Update(fd, u32(2), u64(21), unix.BPF_EXIST) }, 0},
		{"lookup 2", func() unix.Errno { return Lookup(fd, u32(2), val, 0) }, 0},
		{"delete 1", func() unix.Errno { return Delete(fd, u32(1)) }, 0},
		{"delete 1 again", func() unix.Errno { return Delete(fd, u32(1)) }, unix.ENOENT},
		{"lookup-and-delete 2", func() unix.Errno { return LookupAndDelete(fd, u32(2), val, 0) }, 0},
		{"lookup-and-delete 2 again", func() unix.Errno { return LookupAndDelete(fd, u32(2), val, 0) }, unix.ENOENT},
	}
	for _, s := range steps {
		clear(val)
		if got := s.call(); got != s.want {
			t.Fatalf("%s: got %v, want %v", s.name, got, s.want)
		}
		if s.name == "lookup 2" || s.name == "lookup-and-delete 2" {
			if got := binary.NativeEndian.Uint64(val); got != 21 {
				t.Fatalf("%s: got value %d, want 21", s.name, got)
			}
		}
	}
	if n := count(t, m); n != 0 {
		t.Errorf("entries left: got %d, want 0", n)
	}
}

// TestNextKey walks a hash map with NextKey from a nil key and finds every
// key once, then ENOENT.
func TestNextKey(t *testing.T) {
	m := newMap(t, ebpf.Hash, 4, 8, 16)
	want := []uint32{3, 5, 8, 13}
	for _, k := range want {
		if err := m.Put(k, uint64(k)); err != nil {
			t.Fatal(err)
		}
	}
	var got []uint32
	var prev []byte
	next := make([]byte, 4)
	for {
		e := NextKey(m.FD(), prev, next)
		if e == unix.ENOENT {
			break
		}
		if e != 0 {
			t.Fatalf("next key after %v: got %v, want success or ENOENT", prev, e)
		}
		if len(got) > len(want) {
			t.Fatalf("walk does not end: %v", got)
		}
		got = append(got, binary.NativeEndian.Uint32(next))
		prev = slices.Clone(next)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("got keys %v, want %v", got, want)
	}
}

// TestBadFD: a call on a closed descriptor answers EBADF.
func TestBadFD(t *testing.T) {
	m := newMap(t, ebpf.Queue, 0, 8, 1)
	fd, err := unix.Dup(m.FD())
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Close(fd); err != nil {
		t.Fatal(err)
	}
	if e := Pop(fd, make([]byte, 8)); e != unix.EBADF {
		t.Errorf("pop on a closed fd: got %v, want EBADF", e)
	}
}

func count(t *testing.T, m *ebpf.Map) int {
	t.Helper()
	var k uint32
	var v uint64
	n := 0
	it := m.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}
