package mapref_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/mapref"
	"github.com/bpfchan/bpfchan/internal/testenv"
	"github.com/bpfchan/bpfchan/maps"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestRefString(t *testing.T) {
	for _, tc := range []struct {
		r    mapref.Ref
		want string
	}{
		{mapref.Ref{Type: ebpf.Queue, Name: "work", ID: 17}, `Queue map "work" (id 17)`},
		{mapref.Ref{Type: ebpf.Queue, ID: 17}, `Queue map (id 17)`},
		{mapref.Ref{Type: ebpf.RingBuf, Name: "events"}, `RingBuf map "events"`},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("got %s, want %s", got, tc.want)
		}
	}
	if got, want := mapref.Spec(&ebpf.MapSpec{Type: ebpf.Hash}), "unnamed Hash map"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestClone(t *testing.T) {
	testenv.RequireBPF(t)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "work", Type: ebpf.Queue, ValueSize: 4, MaxEntries: 4})
	if err != nil {
		t.Fatal(err)
	}
	c, r, err := mapref.Clone(m)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if r.Name != "work" || r.ID == 0 || r.Type != ebpf.Queue {
		t.Errorf("got %+v, want the queue named work with an ID", r)
	}
	m.Close()
	// The clone keeps working after the caller closed its map.
	if err := c.Update(nil, uint32(7), ebpf.UpdateAny); err != nil {
		t.Errorf("push through the clone after the caller's Close: %v", err)
	}
	if _, _, err := mapref.Clone(m); !errors.Is(err, mapref.ErrClosed) {
		t.Errorf("clone of a closed map: got %v, want ErrClosed", err)
	}
	if _, _, err := mapref.Clone(nil); !errors.Is(err, mapref.ErrMapType) {
		t.Errorf("clone of nil: got %v, want ErrMapType", err)
	}
}

// TestNilMap: a nil map is one error in every package, matching both
// ErrNilMap and ErrMapType (the maps names are these values), on one line;
// a map of the wrong type matches ErrMapType only.
func TestNilMap(t *testing.T) {
	type closer interface{ Close() error }
	open := func(f func() (closer, error)) error {
		c, err := f()
		if err == nil {
			c.Close()
		}
		return err
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"Describe", second(mapref.Describe(nil))},
		{"Clone", third(mapref.Clone(nil))},
		{"maps.Open", open(func() (closer, error) { return maps.Open[uint32, uint32](nil) })},
		{"maps.OpenQueue", open(func() (closer, error) { return maps.OpenQueue[uint32](nil) })},
		{"maps.OpenStack", open(func() (closer, error) { return maps.OpenStack[uint32](nil) })},
		{"maps.OpenPerCPU", open(func() (closer, error) { return maps.OpenPerCPU[uint32, uint32](nil) })},
		{"maps.OpenMapOfMaps", open(func() (closer, error) { return maps.OpenMapOfMaps[uint32](nil) })},
		{"maps.OpenBloomFilter", open(func() (closer, error) { return maps.OpenBloomFilter[uint32](nil) })},
		{"maps.New", open(func() (closer, error) { return maps.New[uint32, uint32](nil) })},
	} {
		for _, want := range []error{mapref.ErrNilMap, mapref.ErrMapType, maps.ErrNilMap, maps.ErrMapType} {
			if !errors.Is(tc.err, want) {
				t.Errorf("%s(nil): got %v, want an error matching %q", tc.name, tc.err, want)
			}
		}
		if tc.err != nil && strings.Contains(tc.err.Error(), "\n") {
			t.Errorf("%s(nil): got %q, want one line", tc.name, tc.err)
		}
	}
	if errors.Is(mapref.ErrMapType, mapref.ErrNilMap) {
		t.Error("ErrMapType matches ErrNilMap: a map of the wrong type is not nil")
	}
	if got, want := mapref.ErrNilMap.Error(), "nil map"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestReexported: each sentinel is one value, whichever package names it.
func TestReexported(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want error
	}{
		{"maps.ErrClosed", maps.ErrClosed, mapref.ErrClosed},
		{"maps.ErrMapType", maps.ErrMapType, mapref.ErrMapType},
		{"maps.ErrNilMap", maps.ErrNilMap, mapref.ErrNilMap},
		{"maps.ErrOutOfRange", maps.ErrOutOfRange, mapref.ErrOutOfRange},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want mapref's value", tc.name, tc.got)
		}
	}
}

func second[T any](_ T, err error) error        { return err }
func third[T, U any](_ T, _ U, err error) error { return err }
