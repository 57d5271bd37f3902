package maps_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bpfchan/bpfchan/internal/producer"
	"github.com/bpfchan/bpfchan/internal/testenv"
	bpfmaps "github.com/bpfchan/bpfchan/maps"
)

// popper is what Queue and Stack share.
type popper interface {
	Push(uint64) error
	PushOverwrite(uint64) error
	Pop() (uint64, error)
	Peek() (uint64, error)
	PopWait(context.Context) (uint64, error)
	Close() error
}

func TestQueueStack(t *testing.T) {
	testenv.RequireBPF(t)
	tests := []struct {
		name     string
		make     func() (popper, error)
		order    []uint64 // pop order after pushing 0, 1, 2
		peek     uint64
		overflow []uint64 // pop order after pushing 0, 1, 2, then 3 with overwrite
	}{
		{"Queue", func() (popper, error) { return bpfmaps.NewQueue[uint64](3) }, []uint64{0, 1, 2}, 0, []uint64{1, 2, 3}},
		{"Stack", func() (popper, error) { return bpfmaps.NewStack[uint64](3) }, []uint64{2, 1, 0}, 2, []uint64{3, 2, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := tt.make()
			if err != nil {
				t.Fatal(err)
			}
			mustClose(t, q)
			_, err = q.Pop()
			wantErr(t, err, bpfmaps.ErrEmpty, "pop", tt.name)
			_, err = q.Peek()
			wantErr(t, err, bpfmaps.ErrEmpty, "peek")
			for i := range uint64(3) {
				if err := q.Push(i); err != nil {
					t.Fatal(err)
				}
			}
			err = q.Push(3)
			wantErr(t, err, bpfmaps.ErrFull, "push", tt.name)
			if got, err := q.Peek(); err != nil || got != tt.peek {
				t.Fatalf("Peek = %d, %v; want %d", got, err, tt.peek)
			}
			for _, want := range tt.order {
				// The zero value pops like any other.
				if got, err := q.Pop(); err != nil || got != want {
					t.Fatalf("Pop = %d, %v; want %d", got, err, want)
				}
			}
			for i := range uint64(4) {
				if err := q.PushOverwrite(i); err != nil {
					t.Fatalf("PushOverwrite(%d): %v", i, err)
				}
			}
			for _, want := range tt.overflow {
				if got, err := q.Pop(); err != nil || got != want {
					t.Fatalf("after overwrite Pop = %d, %v; want %d", got, err, want)
				}
			}
			if _, err := q.Pop(); !errors.Is(err, bpfmaps.ErrEmpty) {
				t.Fatalf("got %v, want ErrEmpty", err)
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			wantErr(t, q.Push(1), bpfmaps.ErrClosed, "push")
			_, err = q.Pop()
			wantErr(t, err, bpfmaps.ErrClosed, "pop")
			_, err = q.PopWait(t.Context())
			wantErr(t, err, bpfmaps.ErrClosed, "pop")
		})
	}
}

func TestTwoQueues(t *testing.T) {
	testenv.RequireBPF(t)
	a, err := bpfmaps.NewQueue[uint32](8)
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, a)
	b, err := bpfmaps.NewQueue[uint32](8)
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, b)
	for i := range uint32(3) {
		if err := a.Push(i); err != nil {
			t.Fatal(err)
		}
		if err := b.Push(100 + i); err != nil {
			t.Fatal(err)
		}
	}
	for i := range uint32(3) {
		if got, err := a.Pop(); err != nil || got != i {
			t.Fatalf("a: got %d, %v; want %d", got, err, i)
		}
	}
	if _, err := a.Pop(); !errors.Is(err, bpfmaps.ErrEmpty) {
		t.Fatalf("a: got %v, want ErrEmpty", err)
	}
	for i := range uint32(3) {
		if got, err := b.Pop(); err != nil || got != 100+i {
			t.Fatalf("b: got %d, %v; want %d", got, err, 100+i)
		}
	}
}

func TestPopWait(t *testing.T) {
	testenv.RequireBPF(t)
	type rec struct {
		Seq  uint64
		Rest [8]byte
	}
	q, err := bpfmaps.NewQueue[rec](64)
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, q)
	p, err := producer.NewPush(q.Map())
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, p)

	// A kernel producer pushes while PopWait waits.
	done := make(chan error, 1)
	go func() { done <- p.Run(5) }()
	for want := range uint64(5) {
		got, err := q.PopWait(t.Context())
		if err != nil || got.Seq != want {
			t.Fatalf("PopWait = %+v, %v; want seq %d", got, err, want)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Cancelling interrupts a PopWait that is waiting between polls (in a
	// bubble, so that it is known to wait before the cancel), and it
	// reports the cause.
	cause := errors.New("test over")
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := q.PopWait(ctx)
			errc <- err
		}()
		synctest.Wait()
		select {
		case err := <-errc:
			t.Fatalf("PopWait of an empty queue returned %v before the cancel", err)
		default:
		}
		start := time.Now()
		cancel(cause)
		if err := <-errc; !errors.Is(err, cause) {
			t.Fatalf("got %v, want the cause %v", err, cause)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("PopWait returned %v after the cancel, want at once (not at its next poll)", d)
		}
	})
	// A done ctx never pops.
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(cause)
	if err := q.Push(rec{Seq: 9}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.PopWait(ctx); !errors.Is(err, cause) {
		t.Fatalf("got %v, want the cause", err)
	}
	if got, err := q.Pop(); err != nil || got.Seq != 9 {
		t.Fatalf("Pop = %+v, %v; want the value PopWait left", got, err)
	}
}
