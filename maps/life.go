package maps

import (
	"sync"
	"sync/atomic"

	"github.com/cilium/ebpf"
)

// life guards a wrapper's file descriptor against Close. Every kernel call
// holds the read lock, Close takes the write lock, so an operation racing
// with Close either completes on the live fd or reports ErrClosed; it never
// reaches a closed (or reused) descriptor number.
type life struct {
	mu     sync.RWMutex
	closed atomic.Bool
}

// acquire takes the read lock; on success the caller must call release.
func (l *life) acquire() bool {
	l.mu.RLock()
	if l.closed.Load() {
		l.mu.RUnlock()
		return false
	}
	return true
}

func (l *life) release() { l.mu.RUnlock() }

// shut closes m once; later calls return nil and do nothing.
func (l *life) shut(m *ebpf.Map) (first bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Swap(true) {
		return false, nil
	}
	return true, m.Close()
}
