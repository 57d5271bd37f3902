package mapref_test

import (
	"errors"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/mapref"
	"github.com/bpfchan/bpfchan/internal/testenv"
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
