package netpoll

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Spec is what a registration waits for.
type Spec struct {
	// FD is a descriptor whose epoll events wake the owner, or -1 for none
	// (a queue, which has no readiness notification). It stays the
	// caller's: Close removes it from the epoll instance but does not close
	// it.
	FD int
	// Events are the epoll events to wait for (unix.EPOLLIN,
	// unix.EPOLLOUT); they are added edge-triggered.
	Events uint32
	// Ready reports whether the owner would find something to do. The loop
	// calls it while the owner waits, at each look; it must be safe to
	// call from another goroutine than the owner's. Nil: never ready.
	Ready func() bool
	// OneShot delivers FD's events only while the owner waits (epoll's
	// EPOLLONESHOT, re-armed by Arm with one epoll_ctl call): for a
	// descriptor whose events are frequent while the owner does not wait
	// (a user ring buffer's drains), so that they do not wake the loop.
	OneShot bool
	// Min and Max are the period of the looks: the first look comes within
	// Min of Wait, and while Ready stays false the period doubles up to
	// Max (Min == Max: a fixed period). Min <= 0: no looks.
	Min, Max time.Duration
	// Backoff is for an owner that can only look itself (a writer blocked
	// on a full queue, which no syscall can ask for room without pushing):
	// every look wakes it, Ready is not called, and each look doubles the
	// period up to Max, until an Arm with reset.
	Backoff bool
}

// Reg is one registration: the way its owner waits. Its methods, but Wait,
// are safe for concurrent use; Wait is the owner's.
type Reg struct {
	l        *loop
	tok      uint32
	fd       int
	events   uint32 // as given to epoll_ctl
	oneShot  bool
	held     bool // a one-shot descriptor kept armed (Hold)
	ready    func() bool
	backoff  bool
	min, max time.Duration

	kick chan struct{} // one pending wake-up

	// Guarded by the package's mu.
	waiting bool          // between Arm and the wake-up or Disarm
	b       *bucket       // the bucket of its next look while it waits, if it has looks
	bi      int           // its index in b.regs
	cur     time.Duration // the current period
	looking bool          // the loop is calling its Ready, without mu
	closed  bool
}

// Register starts waiting for s's descriptor (starting the process's loop
// if it is not running) and returns the registration, which its owner
// closes when it stops.
func Register(s Spec) (*Reg, error) {
	if s.Min > 0 && s.Max < s.Min {
		s.Max = s.Min
	}
	mu.Lock()
	defer mu.Unlock()
	l, err := acquire()
	if err != nil {
		return nil, err
	}
	for l.next++; l.regs[l.next] != nil || l.next == 0; l.next++ {
	}
	r := &Reg{l: l, tok: l.next, fd: s.FD, ready: s.Ready, backoff: s.Backoff, min: s.Min, max: s.Max, kick: make(chan struct{}, 1)}
	switch {
	case s.Backoff:
		r.ready = func() bool { return true }
	case r.ready == nil:
		r.ready = func() bool { return false }
	}
	r.events, r.oneShot = s.Events|unix.EPOLLET, s.OneShot
	if s.OneShot {
		r.events |= unix.EPOLLONESHOT
	}
	if s.FD >= 0 {
		ev := unix.EpollEvent{Events: r.events, Fd: int32(r.tok)}
		if s.OneShot {
			// Added disarmed: the first Arm or Hold sets the events. Added
			// armed, a descriptor already ready (a user ring with room)
			// queued an event at once that could reach the owner's first
			// wait as a spurious wake-up, beside the one of its Hold.
			ev.Events = unix.EPOLLET | unix.EPOLLONESHOT
		}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, s.FD, &ev); err != nil {
			if wait := l.release(); wait != nil {
				mu.Unlock()
				<-wait
				mu.Lock()
			}
			return nil, fmt.Errorf("add descriptor to the epoll instance: %w", err)
		}
	}
	l.regs[r.tok] = r
	return r, nil
}

// Wait is Arm, then Park: for an owner whose own look needs no repeat
// after arming (a queue's, whose values announce no event).
func (r *Reg) Wait(ctx context.Context, extra <-chan struct{}, reset bool) error {
	r.Arm(reset)
	return r.Park(ctx, extra)
}

// Arm starts the owner's wait: from now on an epoll event on the
// descriptor, a look at which Ready reports true, or Wake wakes it. An
// owner whose condition an event announces (a ring's record) arms, then
// looks once more (an event that came before Arm woke nobody), then
// either Disarms (found work) or Parks. reset starts the looks' period at
// Min again (the owner found work since it last waited); otherwise it
// goes on doubling from where it was.
func (r *Reg) Arm(reset bool) {
	mu.Lock()
	defer mu.Unlock()
	if r.closed {
		panic("netpoll: Arm after Close")
	}
	if r.waiting {
		return // armed already
	}
	r.waiting = true
	if r.oneShot && r.fd >= 0 && !r.held {
		// An event that is already due is queued at once.
		ev := unix.EpollEvent{Events: r.events, Fd: int32(r.tok)}
		_ = unix.EpollCtl(r.l.epfd, unix.EPOLL_CTL_MOD, r.fd, &ev)
	}
	if r.min <= 0 {
		return
	}
	if reset || r.cur == 0 {
		r.cur = r.min
	}
	l := r.l
	l.schedule(r, time.Since(l.epoch))
	l.setDeadline()
}

// Park waits for the wake-up Arm made possible, or Interrupt, a receive on
// extra (nil: none), or ctx done (then it returns context.Cause(ctx)); it
// returns nil for the owner to look again: a return is a hint, never a
// promise. The wait is over (disarmed) when it returns.
func (r *Reg) Park(ctx context.Context, extra <-chan struct{}) error {
	defer r.Disarm()
	select {
	case <-r.kick:
	case <-extra:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	return nil
}

// Hold keeps a one-shot descriptor armed, edge-triggered, until Unhold:
// for an owner about to wait several times in a row on a descriptor whose
// readiness is broader than what it waits for (a user ring buffer reports
// EPOLLOUT while any byte is free; its writer needs room for a whole
// record). Re-arming at every Arm would queue an event at once each time
// (the descriptor is ready) and the owner would spin; held, it gets one
// event per change the kernel announces. Both cost one epoll_ctl call.
func (r *Reg) Hold() { r.hold(true) }

// Unhold ends Hold: the descriptor is one-shot again.
func (r *Reg) Unhold() { r.hold(false) }

func (r *Reg) hold(on bool) {
	mu.Lock()
	defer mu.Unlock()
	if !r.oneShot || r.fd < 0 || r.held == on {
		return
	}
	r.held = on
	ev := unix.EpollEvent{Events: r.events, Fd: int32(r.tok)}
	if on {
		ev.Events &^= unix.EPOLLONESHOT
	}
	_ = unix.EpollCtl(r.l.epfd, unix.EPOLL_CTL_MOD, r.fd, &ev)
}

// Disarm ends a wait that Arm started without Park (the owner found work);
// Park calls it itself.
func (r *Reg) Disarm() {
	mu.Lock()
	defer mu.Unlock()
	r.waiting = false
	r.l.unschedule(r)
}

// notify hands the owner a wake-up (at most one is pending).
func (r *Reg) notify() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Wake wakes the owner if it is waiting (or about to: after its own look);
// a wake-up for an owner at work is dropped, since it looks before it
// waits again. It is what an Ack, or a same-process producer, calls.
func (r *Reg) Wake() {
	mu.Lock()
	defer mu.Unlock()
	r.l.wake(r)
}

// Interrupt makes the owner's current Wait return, or its next one if it is
// not waiting: a Close or a cancel that must be seen whatever the owner is
// doing. It is safe from any goroutine, also after Close.
func (r *Reg) Interrupt() { r.notify() }

// Close unregisters r. Once it returns, Ready is not running and will not
// be called again, and the descriptor is out of the epoll instance (the
// caller may then close it and unmap what Ready reads). The last Close of
// the process stops the loop and waits for its goroutine to exit. Close
// must not run concurrently with Wait.
func (r *Reg) Close() error {
	mu.Lock()
	l := r.l
	for r.looking {
		l.looked.Wait()
	}
	if r.closed {
		mu.Unlock()
		return nil
	}
	r.closed = true
	r.waiting = false
	l.unschedule(r)
	delete(l.regs, r.tok)
	var err error
	if r.fd >= 0 {
		if e := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, r.fd, nil); e != nil {
			err = fmt.Errorf("remove descriptor from the epoll instance: %w", e)
		}
	}
	wait := l.release()
	mu.Unlock()
	if wait != nil {
		<-wait
	}
	return err
}

// Running reports whether the process's loop goroutine is running (for
// tests: false once every registration is closed).
func Running() bool {
	mu.Lock()
	defer mu.Unlock()
	return cur != nil
}
