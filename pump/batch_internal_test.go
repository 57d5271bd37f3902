package pump

import (
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
