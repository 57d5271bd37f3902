package pump_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/pump"
)

// TestReviewQueueSeveralPumps: four Queue pumps on one queue, idle (backed
// off) between bursts that a BPF program pushes: each burst is found by the
// shared loop's peek (WithPoll max 2 ms; the test's bound is a failure
// bound), every value arrives exactly once, and at the stop each pump's
// Stats hold Received == Delivered + Dropped + DecodeErrors, and Polls
// (pops and the loop's peeks) is at least Received + EmptyPolls (every
// successful pop is a poll, every empty pop or peek too).
func TestReviewQueueSeveralPumps(t *testing.T) {
	m := newQueue(t, ebpf.Queue, 8, 64)
	p := pushProducer(t, m)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const pumps, bursts, per = 4, 40, 50
	srcs := make([]*pump.Source[uint64], pumps)
	got := make(chan uint64, bursts*per)
	var wg sync.WaitGroup
	for i := range srcs {
		s, err := pump.Queue[uint64](ctx, m, pump.WithPoll(100*time.Microsecond, 2*time.Millisecond), pump.WithBuffer(i%2))
		if err != nil {
			t.Fatal(err)
		}
		srcs[i] = s
		closeOnCleanup(t, cancel, s)
		wg.Go(func() {
			for v := range s.C() {
				got <- v
			}
		})
	}
	seen := make(map[uint64]bool)
	for b := range bursts {
		run(t, p, per)
		for range per {
			select {
			case v := <-got:
				if seen[v] {
					t.Fatalf("value %d delivered twice", v)
				}
				seen[v] = true
			case <-time.After(failAfter):
				t.Fatalf("burst %d: %d of %d values delivered after %v", b, len(seen)-b*per, per, failAfter)
			}
		}
	}
	for _, s := range srcs {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	var delivered uint64
	for i, s := range srcs {
		st := s.Stats()
		delivered += st.Delivered
		if st.Received != st.Delivered+st.Dropped+st.DecodeErrors || st.Polls < st.Received+st.EmptyPolls {
			t.Errorf("pump %d: stats %+v", i, st)
		}
	}
	if _, lost, _ := p.Counts(); lost != 0 || delivered != bursts*per || len(seen) != bursts*per {
		t.Fatalf("delivered %d (%d distinct), lost by the producer %d; want %d, none lost", delivered, len(seen), lost, bursts*per)
	}
}

// TestReviewStopStressAllSources: every kind of source, stopped by Close or
// by a cancel while a producer writes and a consumer receives: when C()
// closes, Stats are final, Delivered is exactly what the consumer got, and
// Received == Delivered + Dropped + DecodeErrors.
func TestReviewStopStressAllSources(t *testing.T) {
	type source struct {
		c     <-chan int // one per value the consumer took out of C()
		close func() error
		wait  func() error
		stats func() pump.Stats
	}
	rb := newRing(t, 1<<14)
	rp := ringProducer(t, rb, 16)
	q := newQueue(t, ebpf.Queue, 16, 256)
	qp := pushProducer(t, q)
	pm := newPerfArray(t)
	pp := perfProducer(t, pm, 16)
	kinds := []struct {
		name string
		prod func(n int)
		open func(ctx context.Context) (source, error)
	}{
		{"RingBuf", func(n int) { rp.Run(n) }, func(ctx context.Context) (source, error) {
			s, err := pump.RingBuf[rec16](ctx, rb, pump.WithBuffer(3))
			if err != nil {
				return source{}, err
			}
			return source{relay(s.C()), s.Close, s.Wait, s.Stats}, nil
		}},
		{"RingBufBatches", func(n int) { rp.Run(n) }, func(ctx context.Context) (source, error) {
			s, err := pump.RingBufBatches[rec16](ctx, rb, pump.WithBuffer(2), pump.WithBatch(3, 0))
			if err != nil {
				return source{}, err
			}
			return source{relayBatches(s.C()), s.Close, s.Wait, s.Stats}, nil
		}},
		{"PerfSamples", func(n int) { pp.Run(n) }, func(ctx context.Context) (source, error) {
			s, err := pump.PerfSamples[rec16](ctx, pm, pump.WithBuffer(3))
			if err != nil {
				return source{}, err
			}
			return source{relay(s.C()), s.Close, s.Wait, s.Stats}, nil
		}},
		{"Queue", func(n int) { qp.Run(n) }, func(ctx context.Context) (source, error) {
			s, err := pump.Queue[rec16](ctx, q, pump.WithBuffer(3), pump.WithPoll(50*time.Microsecond, time.Millisecond))
			if err != nil {
				return source{}, err
			}
			return source{relay(s.C()), s.Close, s.Wait, s.Stats}, nil
		}},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			for i := range 100 {
				ctx, cancel := context.WithCancel(t.Context())
				s, err := k.open(ctx)
				if err != nil {
					cancel()
					t.Fatal(err)
				}
				var prod sync.WaitGroup
				prod.Go(func() { k.prod(10) })
				useClose := i%2 == 0
				stop := func() {
					go func() {
						if useClose {
							s.close()
						} else {
							cancel()
						}
					}()
				}
				k := i % 7 // values taken before the stop: fewer than each iteration produces
				if k == 0 {
					stop()
				}
				got := 0
				for range s.c {
					if got++; got == k {
						stop()
					}
				}
				st := s.stats()
				s.wait()
				cancel()
				prod.Wait()
				if st.Delivered != uint64(got) || st.Received != st.Delivered+st.Dropped+st.DecodeErrors {
					t.Fatalf("iteration %d (close %v): stats when C() closed %+v, consumer got %d", i, useClose, st, got)
				}
				if final := s.stats(); final.Received != st.Received || final.Delivered != st.Delivered || final.Dropped != st.Dropped {
					t.Fatalf("iteration %d: stats changed after C() closed: %+v, then %+v", i, st, final)
				}
			}
		})
	}
}

// relay hands on one int per value received from c, and closes its
// output after c closed: it receives one value at a time and hands it on
// before receiving the next, so the count the test takes from it is what
// was taken out of C().
func relay[T any](c <-chan T) <-chan int {
	out := make(chan int)
	go func() {
		defer close(out)
		for range c {
			out <- 1
		}
	}()
	return out
}

func relayBatches[T any](c <-chan []T) <-chan int {
	out := make(chan int)
	go func() {
		defer close(out)
		for b := range c {
			for range b {
				out <- 1
			}
		}
	}()
	return out
}
