package backoff_test

import (
	"slices"
	"testing"
	"time"

	"github.com/bpfchan/bpfchan/internal/backoff"
	"github.com/bpfchan/bpfchan/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestBackoff(t *testing.T) {
	b := backoff.Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond}
	var got []time.Duration
	for range 5 {
		got = append(got, b.Next())
	}
	want := []time.Duration{1e6, 2e6, 4e6, 5e6, 5e6}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	b.Reset()
	if d := b.Next(); d != time.Millisecond {
		t.Fatalf("after Reset: got %v, want 1ms", d)
	}
}
