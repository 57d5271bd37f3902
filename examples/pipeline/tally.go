package main

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
)

// tally holds what the pipeline's stages have seen, for the live view and
// the summary. Stages update it concurrently; the view reads it.
type tally struct {
	received  atomic.Uint64 // events that reached the count stage
	counted   atomic.Uint64 // the kernel counter after the count stage's last add
	adds      atomic.Uint64 // adds made to the kernel counter: one per batch
	important atomic.Uint64 // events the filter kept
	worked    atomic.Uint64 // events the worker took out of the BPF queue and printed

	mu      sync.Mutex
	top     map[uint32]uint64 // kernel per-syscall counts, as last seen by the watcher
	recent  []string          // the last recentLines important events (view on a terminal)
	pending []string          // important events not yet printed (plain output)
	skipped uint64            // important events not printed because pending was full
}

const (
	recentLines  = 8
	pendingLines = 10
)

func newTally() *tally {
	return &tally{top: make(map[uint32]uint64)}
}

// setCount records the kernel's count for syscall nr.
func (t *tally) setCount(nr uint32, n uint64) {
	t.mu.Lock()
	t.top[nr] = n
	t.mu.Unlock()
}

// work is the worker's job: print one important event (into the view).
func (t *tally) work(e event) {
	line := formatEvent(e)
	t.mu.Lock()
	if len(t.recent) == recentLines {
		copy(t.recent, t.recent[1:])
		t.recent = t.recent[:recentLines-1]
	}
	t.recent = append(t.recent, line)
	if len(t.pending) < pendingLines {
		t.pending = append(t.pending, line)
	} else {
		t.skipped++
	}
	t.mu.Unlock()
	t.worked.Add(1)
}

// takePending returns the important events printed since the last call, and
// how many more there were.
func (t *tally) takePending() ([]string, uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines, skipped := t.pending, t.skipped
	t.pending, t.skipped = nil, 0
	return lines, skipped
}

func (t *tally) recentEvents() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.recent...)
}

// syscallCount is one line of the "top syscalls" panel.
type syscallCount struct {
	Name  string `json:"name"`
	Nr    uint32 `json:"nr"`
	Count uint64 `json:"count"`
}

// topSyscalls returns the n most frequent syscalls in counts, and the total.
func topSyscalls(counts map[uint32]uint64, n int) ([]syscallCount, uint64) {
	var total uint64
	all := make([]syscallCount, 0, len(counts))
	for nr, c := range counts {
		total += c
		all = append(all, syscallCount{Name: syscallName(nr), Nr: nr, Count: c})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Count != all[j].Count {
			return all[i].Count > all[j].Count
		}
		return all[i].Nr < all[j].Nr
	})
	if len(all) > n {
		all = all[:n]
	}
	return all, total
}

// top returns the n most frequent syscalls the watcher has seen, and the total.
func (t *tally) topSyscalls(n int) ([]syscallCount, uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return topSyscalls(t.top, n)
}

func formatEvent(e event) string {
	return fmt.Sprintf("%12.6f  %-10s pid %-7d tid %-7d cpu %-2d %s",
		float64(e.TsNs)/1e9, syscallName(e.Nr), e.Tgid, e.Pid, e.Cpu, comm(e))
}

// comm returns the task's command name, up to its NUL.
func comm(e event) string {
	b := e.Comm[:]
	for i, c := range b {
		if c == 0 {
			b = b[:i]
			break
		}
	}
	return string(b)
}
