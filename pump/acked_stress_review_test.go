package pump_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/bpfchan/bpfchan/maps"
	"github.com/bpfchan/bpfchan/pump"
)

// TestReviewAckedStopStress: many AckSources, one after another, on one
// ring that a producer keeps writing to. Each receiver ranges over C(),
// acknowledging some batches, while the source is closed or cancelled at a
// random moment. Checked at every stop: Delivered is exactly what the
// receiver got when C() closed, Received == Delivered + DecodeErrors,
// Dropped == 0, Acked counts exactly the acknowledged records; and across
// sources: each starts at the first unacknowledged record (same Pos, same
// value), with no gap and no duplicate beyond the unacknowledged ones.
func TestReviewAckedStopStress(t *testing.T) {
	rb := newRing(t, 1<<16) // 2730 records of 16 bytes: more than ever outstanding
	p := ringProducer(t, rb, 16)
	rng := rand.New(rand.NewPCG(1, 2))
	var (
		nextSeq uint64 // the first record not yet acknowledged
		nextPos uint64 // its position, once known
		known   bool
		total   int
	)
	iters := 300
	if testing.Short() {
		iters = 50
	}
	for i := range iters {
		ctx, cancel := context.WithCancel(t.Context())
		opts := []pump.Option{pump.WithBatch(1+rng.IntN(4), 0)}
		if b := rng.IntN(3); b > 0 {
			opts = append(opts, pump.WithBuffer(b))
		}
		s, err := pump.RingBufAcked[rec16](ctx, rb, opts...)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		n := 1 + rng.IntN(12)
		total += n
		var prod sync.WaitGroup
		prod.Go(func() { run(t, p, n) })

		// Stop once the receiver holds k records: k is at most what the
		// ring will hold, so the stop always comes.
		k := uint64(rng.IntN(total - int(nextSeq) + 1))
		useClose := rng.IntN(2) == 0
		var stopErr error
		var stopper sync.WaitGroup
		stop := func() {
			stopper.Go(func() {
				if useClose {
					stopErr = s.Close()
				} else {
					cancel()
				}
			})
		}
		if k == 0 {
			stop()
		}
		got, ackedHere := uint64(0), uint64(0)
		expect := nextSeq
		for b := range s.C() {
			for j, r := range b {
				if r.Value.Seq != expect {
					t.Fatalf("iteration %d: record %d of a batch: seq %d, want %d (gap or duplicate)", i, j, r.Value.Seq, expect)
				}
				if expect == nextSeq && known && r.Pos != nextPos {
					t.Fatalf("iteration %d: the first unacknowledged record (seq %d) came back at %d, it was at %d", i, expect, r.Pos, nextPos)
				}
				if expect == nextSeq {
					nextPos, known = r.Pos, true
				}
				expect++
			}
			before := got
			got += uint64(len(b))
			if rng.IntN(2) == 0 {
				last := b[len(b)-1]
				err := s.Ack(last.Pos)
				switch {
				case err == nil:
					ackedHere += last.Value.Seq + 1 - nextSeq
					nextSeq = last.Value.Seq + 1
					known = false
				case errors.Is(err, maps.ErrClosed):
				default:
					t.Fatalf("iteration %d: Ack(%d): %v", i, last.Pos, err)
				}
			}
			if k > 0 && before < k && got >= k {
				stop()
			}
		}
		st := s.Stats() // C() is closed: final (rule 5)
		stopper.Wait()
		werr := s.Wait()
		cancel()
		prod.Wait()
		switch {
		case useClose && (stopErr != nil || werr != nil):
			t.Fatalf("iteration %d: Close: %v, Wait: %v; want nil", i, stopErr, werr)
		case !useClose && werr != context.Canceled:
			t.Fatalf("iteration %d: Wait after cancel: %v, want context.Canceled", i, werr)
		}
		if st.Delivered != got || st.Received != st.Delivered+st.DecodeErrors || st.Dropped != 0 || st.Acked != ackedHere {
			t.Fatalf("iteration %d: stats when C() closed %+v; the receiver got %d and acknowledged %d", i, st, got, ackedHere)
		}
		if final := s.Stats(); final != st {
			t.Fatalf("iteration %d: stats changed after C() closed: %+v, then %+v", i, st, final)
		}
		if a, _ := s.Positions(); known && a != nextPos {
			t.Fatalf("iteration %d: published consumer position %d after the stop, want %d (the first unacknowledged record)", i, a, nextPos)
		}
	}
	// The rest, to the last record produced.
	s := acked[rec16](t, t.Context(), rb)
	for nextSeq < uint64(total) {
		b, ok := recvWithin(s)
		if !ok {
			t.Fatalf("the last source stopped at seq %d, want %d", nextSeq, total)
		}
		for _, r := range b {
			if r.Value.Seq != nextSeq {
				t.Fatalf("final drain: seq %d, want %d", r.Value.Seq, nextSeq)
			}
			nextSeq++
		}
		if err := s.Ack(b[len(b)-1].Pos); err != nil {
			t.Fatal(err)
		}
	}
	if _, lost, _ := p.Counts(); lost != 0 {
		t.Fatalf("the producer lost %d records: the ring was too small for this test", lost)
	}
}
