package netpoll

import (
	"container/heap"
	"time"
)

// The looks that are due, grouped by instant: every registration's look
// is on the grid of its period, so idle registrations with the same period
// share one bucket, and a tick costs one Ready call each plus an append,
// whatever their number. The heap orders the few distinct instants.

// bucket is the registrations whose look is due at one instant.
type bucket struct {
	at   time.Duration
	regs []*Reg
	idx  int // in the loop's heap
}

// schedule puts r, which waits, in the bucket of its next look: the first
// point after now on the grid of its current period. The caller holds mu.
func (l *loop) schedule(r *Reg, now time.Duration) {
	at := (now/r.cur + 1) * r.cur
	b := l.buckets[at]
	if b == nil {
		if n := len(l.spare); n > 0 {
			b, l.spare = l.spare[n-1], l.spare[:n-1]
		} else {
			b = &bucket{}
		}
		b.at = at
		l.buckets[at] = b
		heap.Push(&l.due, b)
	}
	r.b, r.bi = b, len(b.regs)
	b.regs = append(b.regs, r)
}

// unschedule takes r out of its bucket. The caller holds mu.
func (l *loop) unschedule(r *Reg) {
	b := r.b
	if b == nil {
		return
	}
	last := b.regs[len(b.regs)-1]
	b.regs[r.bi], last.bi = last, r.bi
	b.regs[len(b.regs)-1] = nil
	b.regs = b.regs[:len(b.regs)-1]
	r.b = nil
	if len(b.regs) == 0 {
		heap.Remove(&l.due, b.idx)
		l.drop(b)
	}
}

// drop forgets an emptied bucket, keeping it for reuse.
func (l *loop) drop(b *bucket) {
	delete(l.buckets, b.at)
	b.regs = b.regs[:0]
	l.spare = append(l.spare, b)
}

// dueHeap orders the buckets by instant.
type dueHeap []*bucket

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *dueHeap) Push(x any) {
	b := x.(*bucket)
	b.idx = len(*h)
	*h = append(*h, b)
}
func (h *dueHeap) Pop() any {
	old := *h
	b := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	b.idx = -1
	return b
}
