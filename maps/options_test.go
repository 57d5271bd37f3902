package maps_test

import (
	"math/bits"
	"os"
	"strconv"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/testenv"
	bpfmaps "github.com/bpfchan/bpfchan/maps"
)

// made is what a constructor returns, reduced to its *ebpf.Map and a close.
type made struct {
	m     *ebpf.Map
	close func() error
}

// wrapped reduces a wrapper (or the error that replaced it) to a made.
func wrapped[W interface {
	Map() *ebpf.Map
	Close() error
}](w W, err error) (made, error) {
	if err != nil {
		return made{}, err
	}
	return made{w.Map(), w.Close}, nil
}

func bare(m *ebpf.Map, err error) (made, error) {
	if err != nil {
		return made{}, err
	}
	return made{m, m.Close}, nil
}

var inner = &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1}

// constructors calls every New* constructor of the package with opts.
var constructors = []struct {
	name string
	typ  ebpf.MapType
	make func(opts ...bpfmaps.MapOption) (made, error)
}{
	{"NewHash", ebpf.Hash, func(o ...bpfmaps.MapOption) (made, error) { return wrapped(bpfmaps.NewHash[uint32, uint64](4, o...)) }},
	{"NewLRUHash", ebpf.LRUHash, func(o ...bpfmaps.MapOption) (made, error) {
		return wrapped(bpfmaps.NewLRUHash[uint32, uint64](4, o...))
	}},
	{"NewArray", ebpf.Array, func(o ...bpfmaps.MapOption) (made, error) { return wrapped(bpfmaps.NewArray[uint64](4, o...)) }},
	{"NewQueue", ebpf.Queue, func(o ...bpfmaps.MapOption) (made, error) { return wrapped(bpfmaps.NewQueue[uint64](4, o...)) }},
	{"NewStack", ebpf.Stack, func(o ...bpfmaps.MapOption) (made, error) { return wrapped(bpfmaps.NewStack[uint64](4, o...)) }},
	{"NewPerCPUHash", ebpf.PerCPUHash, func(o ...bpfmaps.MapOption) (made, error) {
		return wrapped(bpfmaps.NewPerCPUHash[uint32, uint64](4, o...))
	}},
	{"NewPerCPUArray", ebpf.PerCPUArray, func(o ...bpfmaps.MapOption) (made, error) {
		return wrapped(bpfmaps.NewPerCPUArray[uint64](4, o...))
	}},
	{"NewLRUPerCPUHash", ebpf.LRUCPUHash, func(o ...bpfmaps.MapOption) (made, error) {
		return wrapped(bpfmaps.NewLRUPerCPUHash[uint32, uint64](4, o...))
	}},
	{"NewLPMTrie", ebpf.LPMTrie, func(o ...bpfmaps.MapOption) (made, error) {
		return wrapped(bpfmaps.NewLPMTrie[[4]byte, uint64](4, o...))
	}},
	{"NewBloomFilter", ebpf.BloomFilter, func(o ...bpfmaps.MapOption) (made, error) {
		return wrapped(bpfmaps.NewBloomFilter[uint64](4, 0, o...))
	}},
	{"NewHashOfMaps", ebpf.HashOfMaps, func(o ...bpfmaps.MapOption) (made, error) {
		return wrapped(bpfmaps.NewHashOfMaps[uint32](4, inner, o...))
	}},
	{"NewArrayOfMaps", ebpf.ArrayOfMaps, func(o ...bpfmaps.MapOption) (made, error) {
		return wrapped(bpfmaps.NewArrayOfMaps(4, inner, o...))
	}},
	{"NewRingBuf", ebpf.RingBuf, func(o ...bpfmaps.MapOption) (made, error) { return bare(bpfmaps.NewRingBuf(os.Getpagesize(), o...)) }},
	{"NewUserRingBuf", ebpf.UserRingbuf, func(o ...bpfmaps.MapOption) (made, error) {
		return bare(bpfmaps.NewUserRingBuf(os.Getpagesize(), o...))
	}},
}

// Every constructor names its map as WithName says: the kernel's name,
// which bpftool map show lists, and the name in its errors; without
// WithName the map is unnamed.
func TestWithName(t *testing.T) {
	testenv.RequireBPF(t)
	for i, c := range constructors {
		t.Run(c.name, func(t *testing.T) {
			name := "bpfchan.t_" + strconv.Itoa(i) // up to 12 characters
			for _, tc := range []struct {
				opts []bpfmaps.MapOption
				want string
			}{
				{[]bpfmaps.MapOption{bpfmaps.WithName(name)}, name},
				{nil, ""},
				{[]bpfmaps.MapOption{bpfmaps.WithName("max_15.chars_ok")}, "max_15.chars_ok"},
			} {
				got, err := c.make(tc.opts...)
				if err != nil {
					t.Fatal(err)
				}
				info, err := got.m.Info()
				if err != nil {
					t.Fatal(err)
				}
				if info.Name != tc.want || got.m.Type() != c.typ {
					t.Errorf("got %v map named %q, want %v named %q", got.m.Type(), info.Name, c.typ, tc.want)
				}
				if err := got.close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// A name the kernel would refuse or cut is refused by every constructor,
// and by New and NewPerCPU in the spec, naming it.
func TestWithNameInvalid(t *testing.T) {
	testenv.RequireBPF(t)
	bad := []struct{ name, frag string }{
		{"sixteen_chars_xx", "16 bytes"},
		{"has-dash", `'-'`},
		{"space d", `' '`},
		{"nämlich", `'ä'`},
	}
	for _, c := range constructors {
		t.Run(c.name, func(t *testing.T) {
			for _, b := range bad {
				got, err := c.make(bpfmaps.WithName(b.name))
				if err == nil {
					got.close()
				}
				wantErr(t, err, bpfmaps.ErrInvalidName, "create", strconv.Quote(b.name), b.frag)
			}
		})
	}
	for _, b := range bad {
		_, err := bpfmaps.New[uint32, uint64](&ebpf.MapSpec{Name: b.name, Type: ebpf.Hash, MaxEntries: 1})
		wantErr(t, err, bpfmaps.ErrInvalidName, strconv.Quote(b.name), b.frag)
		_, err = bpfmaps.NewPerCPU[uint32, uint64](&ebpf.MapSpec{Name: b.name, Type: ebpf.PerCPUHash, MaxEntries: 1})
		wantErr(t, err, bpfmaps.ErrInvalidName, strconv.Quote(b.name), b.frag)
	}
}

// The name given to a constructor names the map in its errors.
func TestWithNameInErrors(t *testing.T) {
	testenv.RequireBPF(t)
	q, err := bpfmaps.NewQueue[uint64](1, bpfmaps.WithName("work"))
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, q)
	info, err := q.Map().Info()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := info.ID()
	_, err = q.Pop()
	wantErr(t, err, bpfmaps.ErrEmpty, `pop Queue map "work" (id `+strconv.Itoa(int(id))+`): map empty`)
}

// Both ring constructors take a power-of-two multiple of the page size and
// refuse any other size, naming it.
func TestRingSizes(t *testing.T) {
	testenv.RequireBPF(t)
	page := os.Getpagesize()
	rings := []struct {
		typ  ebpf.MapType
		make func(int, ...bpfmaps.MapOption) (*ebpf.Map, error)
	}{
		{ebpf.RingBuf, bpfmaps.NewRingBuf},
		{ebpf.UserRingbuf, bpfmaps.NewUserRingBuf},
	}
	bad := []int{0, -page, 1024, page + 1, 3 * page, page * 6}
	if bits.UintSize == 64 {
		bad = append(bad, 1<<(bits.UintSize-2)) // a power of two beyond MaxEntries
	}
	for _, r := range rings {
		t.Run(r.typ.String(), func(t *testing.T) {
			for _, size := range []int{page, 4 * page} {
				m, err := r.make(size, bpfmaps.WithName("ring"))
				if err != nil {
					t.Fatalf("size %d: %v", size, err)
				}
				if m.Type() != r.typ || m.MaxEntries() != uint32(size) {
					t.Errorf("got %v of %d bytes, want %v of %d", m.Type(), m.MaxEntries(), r.typ, size)
				}
				m.Close()
			}
			for _, size := range bad {
				m, err := r.make(size, bpfmaps.WithName("ring"))
				if err == nil {
					m.Close()
				}
				wantErr(t, err, bpfmaps.ErrInvalidSize, r.typ.String()+` map "ring"`, "size "+strconv.Itoa(size)+" ")
			}
		})
	}
}
