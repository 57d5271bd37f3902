package pipeline_test

import (
	"context"
	"errors"
	"hash/fnv"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bpfchan/bpfchan/chans"
	"github.com/bpfchan/bpfchan/pipeline"
)

// jitter spins for a value-dependent while, so parallel workers finish out
// of order.
func jitter(v int) int {
	h := fnv.New32a()
	h.Write([]byte{byte(v), byte(v >> 8)})
	s := 0
	for i := range int(h.Sum32() % 2000) {
		s += i
	}
	return s
}

func TestOrderedWorkers(t *testing.T) {
	noLeaks(t)
	const n = 20_000
	g, _ := pipeline.New(t.Context())
	sq := pipeline.Map(g, pipeline.FromSeq(g, upTo(n)), func(_ context.Context, v int) (int, error) {
		_ = jitter(v)
		return v, nil
	}, pipeline.Workers(8), pipeline.Ordered())
	odd := pipeline.Filter(g, sq, func(_ context.Context, v int) (bool, error) {
		return v%2 == 1 && jitter(v) >= 0, nil
	}, pipeline.Workers(8), pipeline.Ordered(), pipeline.Buffer(4))
	want := 1
	for v, err := range pipeline.All(g, odd) {
		if err != nil {
			t.Fatal(err)
		}
		if v != want {
			t.Fatalf("got %d, want %d: order lost", v, want)
		}
		want += 2
	}
	if want != n+1 {
		t.Fatalf("ended before %d, want %d", want, n+1)
	}
}

func TestUnorderedWorkersExactlyOnce(t *testing.T) {
	noLeaks(t)
	const n = 20_000
	g, _ := pipeline.New(t.Context())
	out := pipeline.Map(g, pipeline.FromSeq(g, upTo(n)), func(_ context.Context, v int) (int, error) {
		_ = jitter(v)
		return v, nil
	}, pipeline.Workers(8))
	seen := make([]int, n)
	var mu sync.Mutex
	pipeline.ForEach(g, out, func(_ context.Context, v int) error {
		mu.Lock()
		seen[v]++
		mu.Unlock()
		return nil
	}, pipeline.Workers(3))
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for v, c := range seen {
		if c != 1 {
			t.Fatalf("value %d seen %d times", v, c)
		}
	}
	if st := g.Stats(); st[1].Workers != 8 || st[1].In != n || st[1].Out != n {
		t.Errorf("map stats %+v, want 8 workers, %d in and out", st[1], n)
	}
}

func TestShardKeepsKeyOrder(t *testing.T) {
	noLeaks(t)
	const n, keys, shards = 30_000, 17, 4
	type kv struct{ key, seq int }
	g, _ := pipeline.New(t.Context())
	in := pipeline.Map(g, pipeline.FromSeq(g, upTo(n)), func(_ context.Context, i int) (kv, error) {
		return kv{key: (i*7 + i/3) % keys, seq: i}, nil
	})
	outs := pipeline.Shard(g, in, shards, func(v kv) int { return v.key - 5 }, pipeline.Buffer(8))
	var (
		mu      sync.Mutex
		lastSeq = map[int]int{}
		shardOf = map[int]int{}
		total   int
	)
	for i, o := range outs {
		pipeline.ForEach(g, o, func(_ context.Context, v kv) error {
			_ = jitter(v.seq)
			mu.Lock()
			defer mu.Unlock()
			total++
			if s, ok := shardOf[v.key]; ok && s != i {
				return errors.New("a key reached two shards")
			}
			shardOf[v.key] = i
			if last, ok := lastSeq[v.key]; ok && v.seq <= last {
				return errors.New("a key's values out of order")
			}
			lastSeq[v.key] = v.seq
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if total != n || len(shardOf) != keys {
		t.Fatalf("processed %d values of %d keys, want %d of %d", total, len(shardOf), n, keys)
	}
}

// TestTeeSlowBranchDrops holds one branch's consumer until the other has
// seen everything: the fast branch never waits, the slow one drops, and
// every value is either delivered or counted.
func TestTeeSlowBranchDrops(t *testing.T) {
	noLeaks(t)
	const n = 5_000
	g, _ := pipeline.New(t.Context())
	outs := pipeline.Tee(g, pipeline.FromSeq(g, upTo(n)), 2,
		pipeline.Branch(1, pipeline.Buffer(4), pipeline.Overflow(chans.DropNewest)), pipeline.Name("tee"))
	fastDone := make(chan struct{})
	var fast, slow int
	pipeline.ForEach(g, outs[0], func(_ context.Context, v int) error {
		if fast++; fast == n {
			close(fastDone)
		}
		return nil
	})
	last := -1
	pipeline.ForEach(g, outs[1], func(ctx context.Context, v int) error {
		<-fastDone // a consumer stuck until the fast branch is through
		if v <= last {
			return errors.New("slow branch out of order")
		}
		last = v
		slow++
		return nil
	})
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	st := g.Stats()[1]
	if fast != n {
		t.Fatalf("fast branch got %d, want %d", fast, n)
	}
	b := st.Branches
	if b[0].Out != n || b[0].Dropped != 0 || b[1].Out != uint64(slow) || b[1].Out+b[1].Dropped != n || b[1].Dropped == 0 {
		t.Fatalf("branches %+v, slow got %d: want fast %d/0 and slow out+dropped = %d with drops", b, slow, n, n)
	}
	if st.Name != "tee" || st.In != n || st.Dropped != b[1].Dropped {
		t.Errorf("tee stats %+v", st)
	}
}

func TestOverflowDropOldest(t *testing.T) {
	noLeaks(t)
	g, _ := pipeline.New(t.Context())
	gate := make(chan struct{})
	// The sink blocks until the source is exhausted, so the buffer of 3 keeps
	// the newest values and the rest are counted dropped.
	src := pipeline.FromSeq(g, func(yield func(int) bool) {
		for i := range 100 {
			if !yield(i) {
				return
			}
		}
		close(gate)
	}, pipeline.Buffer(3), pipeline.Overflow(chans.DropOldest))
	var got []int
	pipeline.ForEach(g, src, func(_ context.Context, v int) error {
		<-gate
		got = append(got, v)
		return nil
	})
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	st := g.Stats()[0]
	if st.In != 100 || st.Out+st.Dropped != 100 || st.Out != uint64(len(got)) {
		t.Fatalf("stats %+v, sink got %v", st, got)
	}
	if !slices.Equal(got[len(got)-3:], []int{97, 98, 99}) {
		t.Errorf("sink got %v, want the newest three last", got)
	}
}

func TestBatchMaxAge(t *testing.T) {
	noLeaks(t)
	const maxAge = 10 * time.Millisecond
	t.Run("trickle", func(t *testing.T) {
		// A value every maxAge/2 for 20 maxAges: with a timer reset by every
		// value, nothing would flush before the end.
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			g, _ := pipeline.New(t.Context())
			src := pipeline.FromSeq(g, func(yield func(time.Duration) bool) {
				for i := range 40 {
					if i > 0 {
						time.Sleep(maxAge / 2)
					}
					if !yield(time.Since(start)) {
						return
					}
				}
			})
			var count, flushes int
			for b, err := range pipeline.All(g, pipeline.Batch(g, src, 1000, maxAge)) {
				if err != nil {
					t.Fatal(err)
				}
				now := time.Since(start)
				count += len(b)
				if count == 40 {
					if now != b[len(b)-1] {
						t.Errorf("final partial batch at %v, want at input close %v", now, b[len(b)-1])
					}
					continue
				}
				flushes++
				if now != b[0]+maxAge {
					t.Errorf("batch %v flushed at %v, want its oldest value's time + maxAge = %v", b, now, b[0]+maxAge)
				}
			}
			if count != 40 || flushes < 10 {
				t.Errorf("got %d values in %d age flushes, want 40 in at least 10", count, flushes)
			}
		})
	})
	t.Run("size", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			g, _ := pipeline.New(t.Context())
			in := make(chan int)
			out := pipeline.Batch(g, in, 3, maxAge)
			for i := range 3 {
				in <- i
			}
			synctest.Wait()
			select {
			case b := <-out:
				if !slices.Equal(b, []int{0, 1, 2}) {
					t.Errorf("got %v, want [0 1 2]", b)
				}
			default:
				t.Fatal("no batch at size, before maxAge")
			}
			in <- 3
			close(in)
			if b := <-out; !slices.Equal(b, []int{3}) {
				t.Errorf("got %v at close, want [3]", b)
			}
			if _, ok := <-out; ok {
				t.Error("output open after input close")
			}
			if err := g.Wait(); err != nil {
				t.Fatal(err)
			}
		})
	})
	t.Run("after size flush", func(t *testing.T) {
		// A size flush stops the timer: the next batch ages from its own
		// first value, not from the first value of the batch before.
		synctest.Test(t, func(t *testing.T) {
			g, _ := pipeline.New(t.Context())
			in := make(chan int)
			out := pipeline.Batch(g, in, 3, maxAge)
			start := time.Now()
			for i := range 3 {
				in <- i
			}
			if b := <-out; !slices.Equal(b, []int{0, 1, 2}) || time.Since(start) != 0 {
				t.Fatalf("got %v after %v, want [0 1 2] at once", b, time.Since(start))
			}
			time.Sleep(maxAge / 2)
			in <- 3
			if b := <-out; !slices.Equal(b, []int{3}) || time.Since(start) != maxAge/2+maxAge {
				t.Errorf("got %v after %v, want [3] after %v", b, time.Since(start), maxAge/2+maxAge)
			}
			close(in)
			if err := g.Wait(); err != nil {
				t.Fatal(err)
			}
		})
	})
	t.Run("close", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			g, _ := pipeline.New(t.Context())
			in := make(chan int, 2)
			in <- 1
			in <- 2
			close(in)
			start := time.Now()
			var got [][]int
			for b, err := range pipeline.All(g, pipeline.Batch(g, in, 10, maxAge)) {
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, b)
			}
			if len(got) != 1 || !slices.Equal(got[0], []int{1, 2}) || time.Since(start) != 0 {
				t.Errorf("got %v after %v, want [[1 2]] at once", got, time.Since(start))
			}
		})
	})
	t.Run("zero: no age flush", func(t *testing.T) {
		// maxAge 0: a partial batch waits for size values or the input's
		// end, however long that takes.
		synctest.Test(t, func(t *testing.T) {
			g, _ := pipeline.New(t.Context())
			in := make(chan int)
			out := pipeline.Batch(g, in, 3, 0)
			start := time.Now()
			next := func() ([]int, bool) {
				select {
				case b := <-out:
					return b, true
				default:
					return nil, false
				}
			}
			for i, v := range []int{0, 1, 2, 3} {
				in <- v
				time.Sleep(24 * time.Hour)
				synctest.Wait()
				b, ok := next()
				if i == 2 {
					if !ok || !slices.Equal(b, []int{0, 1, 2}) {
						t.Fatalf("got %v, %v at size, want [0 1 2]", b, ok)
					}
					continue
				}
				if ok {
					t.Fatalf("batch %v flushed after %v with maxAge 0, want none before size or close", b, time.Since(start))
				}
			}
			close(in)
			if b := <-out; !slices.Equal(b, []int{3}) {
				t.Errorf("got %v at close, want [3]", b)
			}
			if err := g.Wait(); err != nil {
				t.Fatal(err)
			}
		})
	})
	t.Run("abort discards", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			errQuit := errors.New("quit")
			parent, cancel := context.WithCancelCause(t.Context())
			g, _ := pipeline.New(parent)
			in := make(chan int)
			out := pipeline.Batch(g, in, 10, maxAge)
			in <- 1
			cancel(errQuit)
			if b, ok := <-out; ok {
				t.Errorf("got batch %v after abort, want none", b)
			}
			if err := g.Wait(); err != errQuit {
				t.Errorf("Wait: %v, want %v", err, errQuit)
			}
		})
	})
}

// collector is a chans.Sender that keeps what it is sent.
type collector struct {
	c    chan int
	done chan struct{}
	got  []int
	err  error
}

func newCollector(fail int) *collector { return newCollectorBuf(fail, 0) }

// newBufferedCollector returns a collector whose C() has capacity n.
func newBufferedCollector(n int) *collector { return newCollectorBuf(-1, n) }

func newCollectorBuf(fail, n int) *collector {
	s := &collector{c: make(chan int, n), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for v := range s.c {
			if v == fail {
				s.err = errors.New("push failed")
			}
			s.got = append(s.got, v)
		}
	}()
	return s
}

func (s *collector) C() chan<- int { return s.c }
func (s *collector) Wait() error   { <-s.done; return s.err }
func (s *collector) Close() error  { return s.Wait() }

func TestTo(t *testing.T) {
	noLeaks(t)
	g, _ := pipeline.New(t.Context())
	s := newCollector(-1)
	pipeline.To(g, pipeline.FromSeq(g, upTo(50)), s)
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(s.got) != 50 || s.got[49] != 49 {
		t.Fatalf("sink got %v", s.got)
	}

	g, _ = pipeline.New(t.Context())
	s = newCollector(7)
	pipeline.To(g, pipeline.FromSeq(g, upTo(10)), s)
	var se *pipeline.StageError
	if err := g.Wait(); !errors.As(err, &se) || se.Stage != "to#2" {
		t.Fatalf("Wait: %v, want the sink's error from stage to#2", err)
	}
}

func TestStatsAtRunTime(t *testing.T) {
	noLeaks(t)
	g, _ := pipeline.New(t.Context())
	out := pipeline.Map(g, pipeline.FromSeq(g, naturals()), func(_ context.Context, v int) (int, error) {
		return jitter(v), nil
	}, pipeline.Name("work"))
	var n atomic.Int64
	seen := make(chan pipeline.StageStats, 1)
	pipeline.ForEach(g, out, func(context.Context, int) error {
		if n.Add(1) == 1000 {
			seen <- g.Stats()[1] // read from inside the running pipeline
			g.Stop()
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	st := <-seen
	if st.Name != "work" || st.In < 1000 || st.Out < 999 || st.Busy <= 0 {
		t.Errorf("stats at run time %+v", st)
	}
}
