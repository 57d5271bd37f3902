// Package netpoll waits for a file descriptor to become readable in Go's
// network poller, so an idle waiter parks its goroutine and holds no OS
// thread (DESIGN rule 8).
//
// A [Waiter] owns a non-blocking duplicate of the descriptor it was given;
// the original stays untouched except for its O_NONBLOCK flag, which dup
// shares (BPF map syscalls ignore it). The poller is edge-triggered: a
// caller must consume everything that is ready before it waits again, and
// passes a ready func that [Waiter.Wait] evaluates after arming the wait,
// so an event that arrived in between is never missed.
//
// [Waiter.Interrupt] wakes a current or future Wait at once, from any
// goroutine; it is sticky until [Waiter.Close].
package netpoll

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Errors returned by Wait.
var (
	// ErrInterrupted: Interrupt was called.
	ErrInterrupted = errors.New("wait interrupted")
)

// pastDeadline is the deadline that makes a pending wait return at once.
var pastDeadline = time.Unix(1, 0)

// Waiter waits for readability of one descriptor in Go's netpoller.
type Waiter struct {
	f  *os.File
	rc syscall.RawConn

	mu          sync.Mutex // orders deadline changes against Interrupt
	interrupted bool
}

// New duplicates fd, makes the duplicate non-blocking and registers it with
// Go's netpoller. It fails when the descriptor does not support poll.
func New(fd int, name string) (*Waiter, error) {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 1)
	if err != nil {
		return nil, fmt.Errorf("dup %s: %w", name, err)
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return nil, fmt.Errorf("set %s non-blocking: %w", name, err)
	}
	f := os.NewFile(uintptr(dup), name)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("raw conn %s: %w", name, err)
	}
	w := &Waiter{f: f, rc: rc}
	// A descriptor the netpoller refused reports ErrNoDeadline here.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, fmt.Errorf("register %s with the netpoller: %w", name, err)
	}
	return w, nil
}

// Wait returns nil as soon as ready reports true, ok=false with a nil error
// when timeout passes first (timeout <= 0: no timeout), and ErrInterrupted
// after Interrupt. ready runs on the waiting goroutine, first right after
// the wait is armed and then after every readiness event.
func (w *Waiter) Wait(ready func() bool, timeout time.Duration) (ok bool, err error) {
	w.mu.Lock()
	if w.interrupted {
		w.mu.Unlock()
		return false, ErrInterrupted
	}
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	err = w.f.SetReadDeadline(deadline)
	w.mu.Unlock()
	if err != nil {
		return false, err
	}
	err = w.rc.Read(func(uintptr) bool {
		ok = ready()
		return ok
	})
	switch {
	case ok:
		return true, nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.interrupted {
			return false, ErrInterrupted
		}
		return false, nil
	case err == nil:
		return false, nil
	default:
		return false, err
	}
}

// Interrupt makes the current Wait, and every later one, return
// ErrInterrupted at once. It is safe to call from any goroutine, repeatedly.
func (w *Waiter) Interrupt() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.interrupted {
		return
	}
	w.interrupted = true
	_ = w.f.SetReadDeadline(pastDeadline)
}

// Close releases the duplicate descriptor. Wait must not be running.
func (w *Waiter) Close() error {
	return w.f.Close()
}
