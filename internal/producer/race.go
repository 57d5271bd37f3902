package producer

import (
	"errors"
	"fmt"
	"sync"
)

// Race is a load for atomicity tests: a producer's runs and Go workers'
// ops updating the same value at the same time. See Producer.Race.
type Race struct {
	Kernel    int                    // producer runs in all
	Workers   int                    // goroutines calling Op
	PerWorker int                    // Op calls per worker
	Steps     int                    // lockstep steps; 0 means 50
	Op        func(worker int) error // one update by a worker
}

// RaceReport says how much the two sides overlapped.
type RaceReport struct {
	// Overlap[w] is how many producer runs were counted (Counts) between
	// worker w's first op and its last.
	Overlap []uint64
}

// Min is the smallest overlap of any worker.
func (r RaceReport) Min() uint64 {
	if len(r.Overlap) == 0 {
		return 0
	}
	m := r.Overlap[0]
	for _, o := range r.Overlap[1:] {
		m = min(m, o)
	}
	return m
}

// Race runs p for r.Kernel runs while r.Workers goroutines call r.Op
// r.PerWorker times each, and returns once all have finished: exactly
// r.Kernel runs and r.Workers*r.PerWorker ops, so a test knows the exact
// total to expect.
//
// Left to the scheduler, one side often finishes before the other gets a
// CPU (sync/atomic workers are done in a millisecond; one Program.Run with a
// large Repeat is over before a goroutine is scheduled), and such a "race"
// proves nothing. So both sides advance in lockstep: the producer runs in
// r.Steps chunks (Program.Run with Repeat of Kernel/Steps), each worker does
// its ops in as many steps, and neither side starts a step more than one
// ahead of the other's slowest. Within the window both run at once. Every
// worker's span then contains all but a few of the producer's chunks; Race
// reads Counts before a worker's first op and after its last, and fails when
// a worker saw no producer run at all. It returns the first error of the
// producer or an Op; the others stop at their next step.
func (p *Producer) Race(r Race) (RaceReport, error) {
	steps := r.Steps
	if steps == 0 {
		steps = 50
	}
	if r.Workers < 1 || r.Kernel < steps || r.PerWorker < steps {
		return RaceReport{}, fmt.Errorf("producer race: %d workers, %d runs, %d ops per worker, %d steps: want a worker and at least one run and op per step",
			r.Workers, r.Kernel, r.PerWorker, steps)
	}
	l := lockstep{done: make([]int, r.Workers)}
	l.cond.L = &l.mu
	rep := RaceReport{Overlap: make([]uint64, r.Workers)}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range steps {
			if !l.wait(func() bool { return l.slowest() >= i-1 }) {
				return
			}
			if err := p.Run(share(r.Kernel, steps, i)); err != nil {
				l.fail(err)
				return
			}
			l.advance(func() { l.kernel++ })
		}
	})
	for w := range r.Workers {
		wg.Go(func() {
			before, _, err := p.Counts()
			if err != nil {
				l.fail(err)
				return
			}
			for j := range steps {
				if !l.wait(func() bool { return l.kernel >= j-1 }) {
					return
				}
				for range share(r.PerWorker, steps, j) {
					if err := r.Op(w); err != nil {
						l.fail(fmt.Errorf("worker %d: %w", w, err))
						return
					}
				}
				l.advance(func() { l.done[w]++ })
			}
			after, _, err := p.Counts()
			if err != nil {
				l.fail(err)
				return
			}
			rep.Overlap[w] = after - before
		})
	}
	wg.Wait()
	if l.err != nil {
		return rep, l.err
	}
	for w, o := range rep.Overlap {
		if o == 0 {
			return rep, fmt.Errorf("producer race: worker %d saw no producer run while it worked: %w", w, errNoOverlap)
		}
	}
	return rep, nil
}

var errNoOverlap = errors.New("no overlap")

// share is step i's part of n split into steps parts.
func share(n, steps, i int) int { return n*(i+1)/steps - n*i/steps }

// lockstep is the progress of a Race's two sides.
type lockstep struct {
	mu     sync.Mutex
	cond   sync.Cond
	kernel int   // producer chunks done
	done   []int // steps done per worker
	err    error // the first failure: everyone stops
}

func (l *lockstep) slowest() int {
	m := l.done[0]
	for _, d := range l.done[1:] {
		m = min(m, d)
	}
	return m
}

// wait blocks until ok holds (under mu) and reports true, or until a side
// failed and reports false.
func (l *lockstep) wait(ok func() bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.err == nil && !ok() {
		l.cond.Wait()
	}
	return l.err == nil
}

func (l *lockstep) advance(f func()) {
	l.mu.Lock()
	f()
	l.mu.Unlock()
	l.cond.Broadcast()
}

func (l *lockstep) fail(err error) {
	l.mu.Lock()
	if l.err == nil {
		l.err = err
	}
	l.mu.Unlock()
	l.cond.Broadcast()
}
