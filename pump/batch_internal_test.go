package pump

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestBatchAge: a batch that has not filled is sent once its oldest value
// reaches the batch age (checked after each run of up to 64 values), and
// when the map is empty (flush), whichever comes first; a full batch is
// sent at once.
func TestBatchAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &Source[[]int]{}
		c, err := newConfig("test", batchOpts, []Option{WithBuffer(10), WithBatch(100, time.Millisecond)})
		if err != nil {
			t.Fatal(err)
		}
		b := newBatcher(c, s)
		add := func(n int) {
			for n > 0 {
				room := b.room()
				k := min(n, len(room))
				for i := range k {
					room[i] = 1
				}
				b.add(k)
				if err := b.due(t.Context()); err != nil {
					t.Fatal(err)
				}
				n -= k
			}
		}
		add(63)
		time.Sleep(2 * time.Millisecond)
		if len(s.c) != 0 {
			t.Fatal("a batch was sent before the age check")
		}
		add(1) // checked after this run: old enough
		if got := len(<-s.c); got != 64 {
			t.Fatalf("aged batch of %d, want 64", got)
		}
		add(100)
		if got := len(<-s.c); got != 100 {
			t.Fatalf("full batch of %d, want 100", got)
		}
		add(5)
		if err := b.flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := len(<-s.c); got != 5 {
			t.Fatalf("flushed batch of %d, want 5", got)
		}
		if st := b.n.n; st.Delivered != 169 {
			t.Fatalf("delivered %d, want 169", st.Delivered)
		}
	})
}

// TestBatchNoAge: WithBatch(size, 0) means no age flush, as in
// pipeline.Batch: an old partial batch waits for its size or a flush.
func TestBatchNoAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &Source[[]int]{}
		c, err := newConfig("test", batchOpts, []Option{WithBuffer(10), WithBatch(100, 0)})
		if err != nil {
			t.Fatal(err)
		}
		b := newBatcher(c, s)
		for range 99 {
			b.room()
			b.add(1)
			time.Sleep(time.Hour)
			if err := b.due(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if len(s.c) != 0 {
			t.Fatal("a batch was sent by age with maxAge 0")
		}
		b.room()
		b.add(1)
		if err := b.due(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := len(<-s.c); got != 100 {
			t.Fatalf("batch of %d, want 100", got)
		}
	})
	if _, err := newConfig("test", batchOpts, []Option{WithBatch(1, -time.Second)}); err == nil {
		t.Fatal("a negative batch age was accepted")
	}
}

// TestBatchAgeAfterIdle: a batch's age runs from its first value. It used
// to run from when its slot was handed out, before an idle period, so the
// first batch of a burst went out after one run (64) instead of full (256).
func TestBatchAgeAfterIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &Source[[]int]{}
		c, err := newConfig("test", batchOpts, []Option{WithBuffer(10), WithBatch(256, time.Millisecond)})
		if err != nil {
			t.Fatal(err)
		}
		b := newBatcher(c, s)
		b.room() // the loop asks for room; the ring is empty
		b.add(0)
		if err := b.flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // idle (synctest's fake clock)
		for range 3 {           // a burst of 192 records arrives at once
			b.add(len(b.room()))
			if err := b.due(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if len(s.c) != 0 {
			t.Fatalf("a batch of %d sent during the burst: its age counted from before the idle period", len(<-s.c))
		}
	})
}

// TestSingleHolds: with C() full and no receiver, a single-value source
// takes one value more out of the map and then stops taking: it used to
// keep taking until its run was full (WithBuffer(4) popped 8).
func TestSingleHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &Source[int]{}
		c, err := newConfig("test", sourceOpts, []Option{WithBuffer(4)})
		if err != nil {
			t.Fatal(err)
		}
		em := newSingle(c, s)
		ctx, cancel := context.WithCancel(t.Context())
		taken := 0
		done := make(chan error)
		go func() {
			for { // the pump's loop, with a map that never runs dry
				k := len(em.room())
				taken += k
				em.add(k)
				if err := em.due(ctx); err != nil {
					done <- err
					return
				}
			}
		}()
		synctest.Wait() // blocked sending, nobody receives
		if taken != 5 || len(s.c) != 4 {
			t.Errorf("took %d values out of the map with %d in C(), want 4 in C() and one in hand", taken, len(s.c))
		}
		cancel()
		<-done
		em.discard()
		if n := em.n.n; n.Delivered != 4 || n.Dropped != 1 {
			t.Errorf("counters %+v, want 4 delivered and 1 dropped", n)
		}
	})
}
