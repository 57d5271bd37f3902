package backoff_test

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
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

func TestSleeper(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := backoff.Sleeper{Backoff: backoff.Backoff{Min: time.Millisecond, Max: 4 * time.Millisecond}}
		ctx, cancel := context.WithCancel(t.Context())
		t0 := time.Now()
		for _, want := range []time.Duration{1e6, 2e6, 4e6, 4e6} {
			start := time.Now()
			if r := s.Sleep(ctx, nil, nil); r != backoff.Slept {
				t.Fatalf("Sleep: %v, want Slept", r)
			}
			if d := time.Since(start); d != want {
				t.Fatalf("slept %v, want %v", d, want)
			}
		}
		wake, stop := make(chan struct{}), make(chan struct{})
		close(wake)
		if r := s.Sleep(ctx, wake, nil); r != backoff.Woken {
			t.Fatalf("Sleep: %v, want Woken", r)
		}
		close(stop)
		if r := s.Sleep(ctx, nil, stop); r != backoff.Stopped {
			t.Fatalf("Sleep: %v, want Stopped", r)
		}
		cancel()
		if r := s.Sleep(ctx, nil, nil); r != backoff.Cancelled {
			t.Fatalf("Sleep: %v, want Cancelled", r)
		}
		if d := time.Since(t0); d != 11*time.Millisecond {
			t.Fatalf("%v passed, want 11ms: an early return slept", d)
		}
	})
}
