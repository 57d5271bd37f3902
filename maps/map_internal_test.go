package maps

import (
	"errors"
	"testing"

	"github.com/bpfchan/bpfchan/internal/testenv"
)

type closer struct{ closed int }

func (c *closer) Close() error { c.closed++; return nil }

// TestHelperHook checks the contract entry code relies on: open reports
// ErrClosed after Close, Close closes a helper built before, and no helper
// is built after Close.
func TestHelperHook(t *testing.T) {
	testenv.RequireBPF(t)
	m, err := NewHash[uint32, uint64](4)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.open(); err != nil {
		t.Fatalf("open before Close: %v", err)
	}
	c := &closer{}
	m.helper.once.Do(func() { m.helper.c = c })
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if c.closed != 1 {
		t.Fatalf("helper closed %d times, want 1", c.closed)
	}
	if err := m.open(); !errors.Is(err, ErrClosed) {
		t.Fatalf("open after Close: %v, want ErrClosed", err)
	}
	if err := m.Close(); err != nil || c.closed != 1 {
		t.Fatalf("second Close: %v, helper closed %d times", err, c.closed)
	}

	m2, err := NewHash[uint32, uint64](4)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Close(); err != nil {
		t.Fatal(err)
	}
	built := false
	m2.helper.once.Do(func() { built = true })
	if built || !errors.Is(m2.helper.err, ErrClosed) {
		t.Fatalf("after Close: helper built %v, err %v; want not built, ErrClosed", built, m2.helper.err)
	}
}
