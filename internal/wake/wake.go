// Package wake is the process-wide registry through which a bpfchan writer
// that just pushed into a queue or stack map wakes the pollers of the same
// map in the same process at once, instead of letting them sleep out their
// backoff. Maps are keyed by their kernel ID, so clones of one map share an
// entry. Entries are reference counted: Register and Release in pairs.
package wake

import (
	"sync"
	"sync/atomic"
)

// Event is what happened to a map: writers wait for Popped when the map is
// full, pollers for Pushed when it is empty.
type Event uint8

const (
	Pushed Event = iota // a value went into the map
	Popped              // a value was taken out, making room
)

type key struct {
	id uint32
	ev Event
}

// Signal broadcasts one event of one map to whoever armed it.
type Signal struct {
	key  key
	refs int // guarded by registry.mu

	mu    sync.Mutex
	ch    chan struct{} // nil until armed; closed by Notify
	armed atomic.Bool   // ch != nil, readable without the lock
}

var registry struct {
	mu      sync.Mutex
	signals map[key]*Signal
}

// Register returns the signal of event ev on map id, creating it on first use.
func Register(id uint32, ev Event) *Signal {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.signals == nil {
		registry.signals = make(map[key]*Signal)
	}
	k := key{id, ev}
	s := registry.signals[k]
	if s == nil {
		s = &Signal{key: k}
		registry.signals[k] = s
	}
	s.refs++
	return s
}

// Release drops a reference taken by Register.
func (s *Signal) Release() {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if s.refs--; s.refs == 0 {
		delete(registry.signals, s.key)
	}
}

// Armed returns a channel that is closed by the next Notify. Take it before
// looking at the map, then wait on it: a push made after the look is seen.
func (s *Signal) Armed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
		s.armed.Store(true)
	}
	return s.ch
}

// Notify wakes everyone waiting on an armed channel. When nobody armed it,
// it costs one atomic load: an arm that this load misses happened after the
// caller's change to the map, so the armer's next look sees that change.
func (s *Signal) Notify() {
	if !s.armed.Load() {
		return
	}
	s.mu.Lock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
		s.armed.Store(false)
	}
	s.mu.Unlock()
}

// Len returns how many signals are registered: zero once every pump that
// registered one has stopped (a leak check for tests).
func Len() int {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	return len(registry.signals)
}
