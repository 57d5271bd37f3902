package watch

import (
	"bytes"

	"github.com/bpfchan/bpfchan/internal/snapshot"
)

// pending is one undelivered change of one key, in raw bytes.
type pending struct {
	kind           Kind
	key, old, new  []byte
	hasOld, hasNew bool
	dead           bool // cancelled out by a later change
	initial        bool // a key watcher's initial state: never cancelled out
}

// queue holds the undelivered changes, at most one per key, in the order
// their keys first changed. A new change of a key that is already pending is
// merged into that entry (see merge), so a slow consumer costs at most one
// entry per key, never a blocked poller. Buffers are reused: adding a change
// allocates only when the queue grows past its previous size or a key is new
// to the index.
type queue struct {
	ents  []pending
	head  int
	live  int
	index map[string]int // key → position in ents
	equal func(a, b []byte) bool
}

func newQueue(equal func(a, b []byte) bool) *queue {
	return &queue{index: make(map[string]int), equal: equal}
}

func (q *queue) eq(a, b []byte) bool {
	if q.equal != nil {
		return q.equal(a, b)
	}
	return bytes.Equal(a, b)
}

// add records one change observed by a poll and returns how many changes
// were coalesced by it: 0 (a new pending entry), 1 (merged into the pending
// entry) or 2 (the pending entry and this change cancelled out).
func (q *queue) add(kind snapshot.Kind, key, old, new []byte) int {
	k := Kind(kind)
	if i, ok := q.index[string(key)]; ok {
		return q.merge(i, k, old, new)
	}
	if len(q.ents) == cap(q.ents) {
		q.compact()
	}
	if len(q.ents) < cap(q.ents) {
		q.ents = q.ents[:len(q.ents)+1] // reuses that entry's buffers
	} else {
		q.ents = append(q.ents, pending{})
	}
	i := len(q.ents) - 1
	p := &q.ents[i]
	p.kind, p.dead, p.initial = k, false, false
	p.key = append(p.key[:0], key...)
	p.old, p.hasOld = append(p.old[:0], old...), old != nil
	p.new, p.hasNew = append(p.new[:0], new...), new != nil
	q.index[string(key)] = i
	q.live++
	return 0
}

// merge folds a change into the pending entry at i:
//
//	Added   + Updated = Added with the newer value
//	Added   + Deleted = nothing
//	Updated + Updated = Updated from the older Old to the newer New (nothing if equal)
//	Updated + Deleted = Deleted with the older Old
//	Deleted + Added   = Updated from the older Old to the new value (nothing if equal)
//
// except that a key watcher's initial state (see keepInitial) is never
// cancelled: Added + Deleted = Deleted with no Old.
func (q *queue) merge(i int, k Kind, old, new []byte) int {
	p := &q.ents[i]
	switch {
	case p.kind == Added && k == Updated:
		p.new = append(p.new[:0], new...)
		return 1
	case p.kind == Added && k == Deleted && p.initial:
		p.kind = Deleted
		p.new, p.hasNew = p.new[:0], false
		return 1
	case p.kind == Added && k == Deleted:
		q.kill(i)
		return 2
	case p.kind == Updated && k == Updated, p.kind == Deleted && k == Added:
		p.kind = Updated
		p.new, p.hasNew = append(p.new[:0], new...), true
		if p.hasOld && q.eq(p.old, p.new) {
			q.kill(i)
			return 2
		}
		if !p.hasOld { // the key was absent at the start (Changes WithInitial)
			p.kind = Added
		}
		return 1
	case p.kind == Updated && k == Deleted:
		p.kind = Deleted
		p.new, p.hasNew = p.new[:0], false
		return 1
	}
	// Not a sequence a poller produces; keep the newest change.
	p.kind = k
	p.old, p.hasOld = append(p.old[:0], old...), old != nil
	p.new, p.hasNew = append(p.new[:0], new...), new != nil
	return 1
}

// keepInitial marks the pending changes as a key watcher's initial state,
// which the consumer must receive even when the key changes back before it
// looks: it has seen no state yet that "nothing" could refer to.
func (q *queue) keepInitial() {
	for i := q.head; i < len(q.ents); i++ {
		q.ents[i].initial = true
	}
}

func (q *queue) kill(i int) {
	p := &q.ents[i]
	delete(q.index, string(p.key))
	p.dead = true
	q.live--
}

// front returns the oldest pending change, or nil.
func (q *queue) front() *pending {
	for q.head < len(q.ents) {
		if p := &q.ents[q.head]; !p.dead {
			return p
		}
		q.head++
	}
	return nil
}

// pop removes the change front returned.
func (q *queue) pop() {
	q.kill(q.head)
	q.head++
	if q.head == len(q.ents) {
		q.ents, q.head = q.ents[:0], 0
	}
}

// clear drops every pending change and returns how many there were.
func (q *queue) clear() int {
	n := q.live
	for i := q.head; i < len(q.ents); i++ {
		if !q.ents[i].dead {
			q.kill(i)
		}
	}
	q.ents, q.head = q.ents[:0], 0
	return n
}

// compact moves the live entries to the front when at least half of the
// slice is consumed or cancelled, so the queue never holds much more than
// one entry per pending key; otherwise append grows it.
func (q *queue) compact() {
	if len(q.ents)-q.live < len(q.ents)/2 {
		return
	}
	n := 0
	for i := q.head; i < len(q.ents); i++ {
		if q.ents[i].dead {
			continue
		}
		q.ents[n], q.ents[i] = q.ents[i], q.ents[n] // swap keeps both buffers
		q.index[string(q.ents[n].key)] = n
		n++
	}
	q.ents, q.head = q.ents[:n], 0
}
