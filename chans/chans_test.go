package chans_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bpfchan/bpfchan/chans"
	"github.com/bpfchan/bpfchan/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestRecv(t *testing.T) {
	ch := make(chan int, 1)
	ch <- 7
	if v, ok, err := chans.Recv(t.Context(), ch); v != 7 || !ok || err != nil {
		t.Fatalf("got %d, %v, %v; want 7, true, nil", v, ok, err)
	}
	close(ch)
	if v, ok, err := chans.Recv(t.Context(), ch); v != 0 || ok || err != nil {
		t.Fatalf("closed: got %d, %v, %v; want 0, false, nil", v, ok, err)
	}
	cause := errors.New("stop")
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(cause)
	if _, ok, err := chans.Recv(ctx, make(chan int)); ok || !errors.Is(err, cause) {
		t.Fatalf("cancelled: got %v, %v; want false, %v", ok, err, cause)
	}
}

func TestRecvTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ch := make(chan int)
		go func() {
			time.Sleep(time.Second)
			ch <- 1
		}()
		if _, ok, err := chans.RecvTimeout(ch, 500*time.Millisecond); ok || !errors.Is(err, chans.ErrTimeout) {
			t.Fatalf("got %v, %v; want false, ErrTimeout", ok, err)
		}
		if v, ok, err := chans.RecvTimeout(ch, time.Second); v != 1 || !ok || err != nil {
			t.Fatalf("got %d, %v, %v; want 1, true, nil", v, ok, err)
		}
		close(ch)
		if _, ok, err := chans.RecvTimeout(ch, time.Second); ok || err != nil {
			t.Fatalf("closed: got %v, %v; want false, nil", ok, err)
		}
	})
}

func TestSend(t *testing.T) {
	ch := make(chan int, 1)
	if err := chans.Send(t.Context(), ch, 3); err != nil || <-ch != 3 {
		t.Fatalf("Send: %v", err)
	}
	cause := errors.New("stop")
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(cause)
	if err := chans.Send(ctx, make(chan int), 1); !errors.Is(err, cause) {
		t.Fatalf("cancelled: got %v, want %v", err, cause)
	}
}

func TestAll(t *testing.T) {
	ch := make(chan int, 5)
	for i := range 5 {
		ch <- i
	}
	close(ch)
	if got := slices.Collect(chans.All(t.Context(), ch)); !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
		t.Fatalf("got %v", got)
	}
	// Ends on ctx; break leaves the channel usable.
	ctx, cancel := context.WithCancel(t.Context())
	ch = make(chan int, 5)
	ch <- 1
	ch <- 2
	for v := range chans.All(ctx, ch) {
		if v == 1 {
			break
		}
	}
	if v := <-ch; v != 2 {
		t.Fatalf("after break: got %d, want 2", v)
	}
	cancel()
	if got := slices.Collect(chans.All(ctx, ch)); len(got) != 0 {
		t.Fatalf("after cancel: got %v", got)
	}
}

// TestAllStopsAtCancel: once ctx is done All yields nothing more, even with
// values ready (a select between a ready channel and a done ctx picks at
// random: 100 rounds with 64 ready values each all but surely hit it).
func TestAllStopsAtCancel(t *testing.T) {
	for range 100 {
		ch := make(chan int, 64)
		for i := range 64 {
			ch <- i
		}
		ctx, cancel := context.WithCancel(t.Context())
		n := 0
		for range chans.All(ctx, ch) {
			n++
			cancel()
		}
		cancel()
		if n != 1 {
			t.Fatalf("yielded %d values, the last %d after cancel", n, n-1)
		}
	}
}

func TestUntil(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ch := make(chan int)
		go func() {
			for i := range 3 {
				time.Sleep(50 * time.Millisecond) // each within the idle time
				ch <- i
			}
			time.Sleep(time.Second) // then silence
			ch <- 99
		}()
		got := slices.Collect(chans.Until(ch, 100*time.Millisecond))
		if !slices.Equal(got, []int{0, 1, 2}) {
			t.Fatalf("got %v, want [0 1 2]", got)
		}
		if v := <-ch; v != 99 {
			t.Fatalf("got %d", v)
		}
		close(ch)
		if got := slices.Collect(chans.Until(ch, time.Hour)); len(got) != 0 {
			t.Fatalf("closed: got %v", got)
		}
	})
}

func TestOffer(t *testing.T) {
	for _, tc := range []struct {
		p       chans.Policy
		cap     int
		want    []int
		dropped []int
		evicted []bool
	}{
		{chans.DropNewest, 2, []int{0, 1}, []int{2, 3}, []bool{false, false}},
		{chans.DropOldest, 2, []int{2, 3}, []int{0, 1}, []bool{true, true}},
		{chans.DropOldest, 0, nil, []int{0, 1, 2, 3}, []bool{false, false, false, false}},
	} {
		t.Run(tc.p.String(), func(t *testing.T) {
			ch := make(chan int, tc.cap)
			var dropped []int
			var evicted []bool
			for i := range 4 {
				_, err := chans.OfferFunc(t.Context(), ch, i, tc.p, func(d int, ev bool) {
					dropped = append(dropped, d)
					evicted = append(evicted, ev)
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			close(ch)
			got := slices.Collect(chans.All(t.Context(), ch))
			if !slices.Equal(got, tc.want) || !slices.Equal(dropped, tc.dropped) || !slices.Equal(evicted, tc.evicted) {
				t.Fatalf("got %v, dropped %v (evicted %v); want %v, %v (%v)", got, dropped, evicted, tc.want, tc.dropped, tc.evicted)
			}
		})
	}
	t.Run("block", func(t *testing.T) {
		ch := make(chan int, 1)
		if dropped, err := chans.Offer(t.Context(), ch, 1, chans.Block); dropped || err != nil {
			t.Fatalf("got %v, %v", dropped, err)
		}
		cause := errors.New("stop")
		ctx, cancel := context.WithCancelCause(t.Context())
		cancel(cause)
		if dropped, err := chans.Offer(ctx, ch, 2, chans.Block); dropped || !errors.Is(err, cause) {
			t.Fatalf("full and cancelled: got %v, %v; want false, %v", dropped, err, cause)
		}
	})
}

func TestPolicyString(t *testing.T) {
	for p, want := range map[chans.Policy]string{chans.Block: "block", chans.DropNewest: "drop-newest", chans.DropOldest: "drop-oldest", 9: "policy(9)"} {
		if got := p.String(); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}
