package maps

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bpfchan/bpfchan/internal/testenv"
)

// TestPopWaitBackoff checks PopWait's polling schedule on a fake clock: it
// polls at once, then after 20µs, 40µs, 80µs... capped at 10ms, so a value
// pushed at a known time is popped at the next poll after it.
func TestPopWaitBackoff(t *testing.T) {
	testenv.RequireBPF(t)
	q, err := NewQueue[uint64](4)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	tests := []struct {
		pushAt time.Duration
		want   time.Duration // the first poll at or after pushAt
	}{
		{0, 0},
		{35 * time.Microsecond, 60 * time.Microsecond},
		{100 * time.Microsecond, 140 * time.Microsecond},
		// Polls at 0, 20, 60, 140, 300, 620, 1260, 2540, 5100, 10220µs, then
		// every 10ms.
		{time.Second, 1000220 * time.Microsecond},
	}
	for _, tt := range tests {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			go func() {
				time.Sleep(tt.pushAt)
				if err := q.Push(uint64(tt.pushAt)); err != nil {
					t.Error(err)
				}
			}()
			if tt.pushAt == 0 {
				synctest.Wait()
			}
			v, err := q.PopWait(t.Context())
			if err != nil || v != uint64(tt.pushAt) {
				t.Fatalf("PopWait = %d, %v; want %d", v, err, tt.pushAt)
			}
			if got := time.Since(start); got != tt.want {
				t.Errorf("push at %v: popped at %v, want %v", tt.pushAt, got, tt.want)
			}
		})
	}
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := q.PopWait(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want DeadlineExceeded", err)
		}
		if got := time.Since(start); got != 50*time.Millisecond {
			t.Errorf("returned after %v, want exactly the 50ms deadline (not the next poll)", got)
		}
	})
}

// TestCloseDuringIteration closes the map from the loop body: the walk
// stops at the next batch with ErrClosed in the error.
func TestCloseDuringIteration(t *testing.T) {
	testenv.RequireBPF(t)
	m, err := NewArray[uint32](64)
	if err != nil {
		t.Fatal(err)
	}
	m.batch = 8
	var ierr error
	count := 0
	for range m.All(&ierr) {
		count++
		if count == 3 {
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if count != 8 || !errors.Is(ierr, ErrClosed) {
		t.Fatalf("got %d elements and %v, want the first batch of 8 and ErrClosed", count, ierr)
	}
	if _, _, err := m.Drain(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Drain: got %v, want ErrClosed", err)
	}
}
