package netpoll

import (
	"container/heap"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// loop is the process's one waiting goroutine: an epoll instance in Go's
// netpoller, and a heap of the looks that are due.
type loop struct {
	ep    *os.File
	epfd  int
	rc    syscall.RawConn
	epoch time.Time // looks are durations since epoch, on their period's grid
	done  chan struct{}

	// Guarded by mu (the package's): the registrations, by token, and the
	// waiting ones by when their look is due; refs counts the open ones.
	regs     map[uint32]*Reg
	buckets  map[time.Duration]*bucket // the waiting registrations, by the instant of their next look
	due      dueHeap                   // the buckets, earliest first
	spare    []*bucket
	batch    []*Reg     // the registrations of the look in progress
	found    []bool     // and what their Ready said
	looked   *sync.Cond // broadcast (on mu) when a look has ended
	refs     int
	next     uint32
	deadline time.Duration // the deadline set on ep, 0 for none
	stopping bool

	events [128]unix.EpollEvent // dispatch's, on the loop goroutine only
}

// dispatchEvery is how many Ready calls a look makes between two
// dispatches of the events that arrived meanwhile: a Ready that peeks a
// queue is a syscall, so a sweep of thousands of them would otherwise
// delay a ring's wake-up by the whole sweep (PERFORMANCE.md); 64 bounds
// that delay to about 64 peeks, at the cost of one epoll_wait per 64 peeks
// (and a yield when it woke an owner).
const dispatchEvery = 64

var (
	mu  sync.Mutex // guards cur and every loop's registrations
	cur *loop
)

// acquire returns the running loop, starting it if there is none; the
// caller holds mu.
func acquire() (*loop, error) {
	if cur != nil {
		cur.refs++
		return cur, nil
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("create epoll instance: %w", err)
	}
	// Our own descriptor: making it non-blocking lets os.NewFile register
	// it with the netpoller.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("set epoll instance non-blocking: %w", err)
	}
	ep := os.NewFile(uintptr(epfd), "bpfchan epoll")
	rc, err := ep.SyscallConn()
	if err == nil {
		err = ep.SetReadDeadline(time.Time{}) // fails when not in the netpoller
	}
	if err != nil {
		ep.Close()
		return nil, fmt.Errorf("register epoll instance with the netpoller: %w", err)
	}
	l := &loop{ep: ep, epfd: epfd, rc: rc, epoch: time.Now(), done: make(chan struct{}), regs: make(map[uint32]*Reg), buckets: make(map[time.Duration]*bucket), looked: sync.NewCond(&mu), refs: 1}
	cur = l
	go l.run()
	return l, nil
}

// release drops a reference; the last one stops the loop, and the caller
// (holding mu) gets its done channel to wait on after unlocking.
func (l *loop) release() (wait <-chan struct{}) {
	if l.refs--; l.refs > 0 {
		return nil
	}
	if cur == l {
		cur = nil
	}
	l.stopping = true
	_ = l.ep.SetReadDeadline(time.Unix(1, 0)) // wake the loop now
	return l.done
}

// run waits in the netpoller for events and deadlines until the last
// registration is closed. Its exit condition: stopping is set (by the last
// release), which also makes its wait return at once.
func (l *loop) run() {
	defer func() {
		l.ep.Close()
		close(l.done)
	}()
	for {
		err := l.rc.Read(func(uintptr) bool {
			l.dispatch()
			return false // wait for the next event or deadline
		})
		mu.Lock()
		stop := l.stopping
		if !stop && errors.Is(err, os.ErrDeadlineExceeded) {
			l.look()
		}
		mu.Unlock()
		if stop {
			return
		}
	}
}

// dispatch wakes the waiting owners of the descriptors that have events
// and reports whether it woke any. It runs on the loop goroutine without
// mu: from run, and from look between Ready calls.
func (l *loop) dispatch() (woke bool) {
	events := l.events[:]
	for {
		n, err := unix.EpollWait(l.epfd, events, 0)
		if err == unix.EINTR {
			continue
		}
		if n <= 0 {
			return woke
		}
		mu.Lock()
		for _, ev := range events[:n] {
			if r := l.regs[uint32(ev.Fd)]; r != nil && l.wake(r) {
				woke = true
			}
		}
		mu.Unlock()
		if n < len(events) {
			return woke
		}
	}
}

// look calls Ready for the registrations whose look is due, wakes those
// that are ready and schedules the others' next look (their period doubled
// up to Max), then sets the deadline for the earliest one. The caller
// holds mu; look releases it while it calls Ready (a queue's peek is a
// syscall: thousands of them must not hold up every Arm, Wake and Ack, nor
// the events, which it dispatches every dispatchEvery calls), and Close
// waits for a look of its registration to end.
func (l *loop) look() {
	now := time.Since(l.epoch)
	batch := l.batch[:0]
	for len(l.due) > 0 && l.due[0].at <= now {
		b := heap.Pop(&l.due).(*bucket)
		delete(l.buckets, b.at)
		for _, r := range b.regs {
			r.b, r.looking = nil, true
			batch = append(batch, r)
		}
		clear(b.regs)
		b.regs = b.regs[:0]
		l.spare = append(l.spare, b)
	}
	if len(batch) > 0 {
		found := l.found[:0]
		mu.Unlock()
		for i, r := range batch {
			if i > 0 && i%dispatchEvery == 0 {
				// A long sweep of peeks does not hold up the rings'
				// wake-ups; an owner woken here is queued to run next on
				// this goroutine's P, which the sweep's raw syscalls never
				// give up: yield to it.
				if l.dispatch() {
					runtime.Gosched()
				}
			}
			found = append(found, r.ready())
		}
		mu.Lock()
		for i, r := range batch {
			r.looking = false
			if r.closed || !r.waiting || r.b != nil {
				continue // closed, woken, or armed anew meanwhile
			}
			if r.cur < r.max && (r.backoff || !found[i]) {
				r.cur = min(2*r.cur, r.max)
			}
			if found[i] {
				r.waiting = false
				r.notify()
				continue
			}
			l.schedule(r, now)
		}
		l.looked.Broadcast()
		l.found = found[:0]
	}
	clear(batch)
	l.batch = batch[:0]
	l.deadline = 0
	if len(l.due) == 0 {
		_ = l.ep.SetReadDeadline(time.Time{}) // the expired one would return at once
		return
	}
	l.setDeadline()
}

// setDeadline makes the netpoller wake the loop for the earliest look due,
// unless it will already. The caller holds mu.
func (l *loop) setDeadline() {
	if len(l.due) == 0 || l.stopping {
		return
	}
	at := l.due[0].at
	if l.deadline != 0 && l.deadline <= at {
		return
	}
	l.deadline = at
	_ = l.ep.SetReadDeadline(l.epoch.Add(at))
}

// wake ends r's wait, if it waits, and wakes its owner. The caller holds
// mu.
func (l *loop) wake(r *Reg) (woke bool) {
	if !r.waiting {
		return false // its owner looks before it waits again
	}
	r.waiting = false
	l.unschedule(r)
	r.notify()
	return true
}
