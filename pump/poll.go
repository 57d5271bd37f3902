package pump

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/bpfcall"
	"github.com/bpfchan/bpfchan/internal/netpoll"
	"github.com/bpfchan/bpfchan/internal/wake"
)

// Queue starts a pump that pops the queue map m (FIFO) and sends each value,
// decoded into T, on C(). T's size must equal the map's value size, unless
// WithDecoder is given.
//
// The kernel offers no readiness notification for queues, so the map is
// polled: the pump pops without pausing while values come, and when the
// queue is empty the process's waiting goroutine peeks at it, after the
// WithPoll minimum, the period doubling to the maximum (defaults
// DefaultPollMin and DefaultPollMax), and wakes the pump when a value is
// there. A push made by this package's writers to the same map in this
// process wakes it at once. With
// the default unbuffered C() the pump holds at most one popped value that no
// receiver has taken. Several pumps on one queue get disjoint values.
//
// Options: WithBuffer, WithOverflow, WithDecoder, WithPoll.
func Queue[T any](ctx context.Context, m *ebpf.Map, opts ...Option) (*Source[T], error) {
	return popSource[T](ctx, "queue pump", m, ebpf.Queue, opts)
}

// Stack is Queue for a stack map: values come out LIFO (exactly, for the
// values already in the stack; see the package documentation).
func Stack[T any](ctx context.Context, m *ebpf.Map, opts ...Option) (*Source[T], error) {
	return popSource[T](ctx, "stack pump", m, ebpf.Stack, opts)
}

func popSource[T any](ctx context.Context, what string, m *ebpf.Map, typ ebpf.MapType, opts []Option) (*Source[T], error) {
	c, err := newConfig(what, pollOpts, opts)
	if err != nil {
		return nil, err
	}
	mi, err := claim(ctx, what, m, typ)
	if err != nil {
		return nil, err
	}
	s, f, dec, err := newPopSource[T](what, mi, c)
	if err != nil {
		mi.m.Close()
		return nil, err
	}
	start(ctx, c, f, dec, newSingle(c, s), s)
	return s, nil
}

// newPopSource makes the source and the feed that pops mi's map (the
// pump's clone, which the feed closes when it stops).
func newPopSource[T any](what string, mi mapInfo, c config) (*Source[T], *popFeed, func([]byte, *T) error, error) {
	dec, size, err := decoderFor[T](c, mi.name)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %s: %w", what, mi.name, err)
	}
	vs := mi.m.ValueSize()
	if size >= 0 && size != int(vs) {
		return nil, nil, nil, fmt.Errorf("%s: %s: value size: Go type %T is %d bytes, map has %d: %w",
			what, mi.name, *new(T), size, vs, ErrSize)
	}
	s := &Source[T]{}
	f := &popFeed{
		m:      mi.m,
		name:   mi.name,
		buf:    make([]byte, max(vs, 1)),
		peeked: make([]byte, max(vs, 1)),
		n:      &s.h.cnt,
	}
	// The process's waiting goroutine peeks at the map while the pump
	// waits, from the WithPoll minimum doubling to the maximum, and wakes
	// the pump only when a value is there: idle pollers share its timer.
	f.reg, err = netpoll.Register(netpoll.Spec{FD: -1, Ready: f.peek, Min: c.pollMin, Max: c.pollMax})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: poll %s: %w", what, mi.name, err)
	}
	f.pushed = wake.Register(mi.id, wake.Pushed)
	f.popped = wake.Register(mi.id, wake.Popped)
	s.h.live = func(st *Stats) {
		st.Polls += f.peeks.Load()
		st.EmptyPolls += f.emptyPeeks.Load()
	}
	return s, f, dec, nil
}

// popFeed pops a queue or stack with LOOKUP_AND_DELETE, and waits for it
// through the process's waiting goroutine, which peeks.
type popFeed struct {
	m      *ebpf.Map // the pump's clone
	name   string
	buf    []byte
	reg    *netpoll.Reg
	pushed *wake.Signal // our writers pushed: look now
	popped *wake.Signal // we made room: tell waiting writers
	armed  <-chan struct{}
	n      *counters
	found  bool // a pop found a value since the last wait

	// The waiting goroutine's peeks, with their own buffer;
	// counted here and folded into the pump's Polls and EmptyPolls when
	// it wakes.
	peeked     []byte
	peeks      atomic.Uint64
	emptyPeeks atomic.Uint64
	retry      atomic.Bool // the next look wakes the pump without a peek

	held   bool   // graceful stop: pop at most budget more values
	budget uint32 // pops left: the map cannot hold more than MaxEntries
	busy   bool   // the last pop was refused with EBUSY
}

func (f *popFeed) next() ([]byte, bool, error) {
	if f.held {
		if f.budget == 0 {
			return nil, false, nil
		}
		f.budget--
	}
	if f.armed == nil {
		// Armed before looking: a push after the look closes it.
		f.armed = f.pushed.Armed()
	}
	f.n.n.Polls++
	err := f.pop()
	f.busy = false
	switch {
	case err == 0:
		f.found = true
		f.popped.Notify()
		return f.buf, true, nil
	case err == unix.EBUSY:
		// Since Linux 6.15 the map's lock is a resilient spinlock that
		// gives up on a suspected deadlock, or after a long wait (a
		// holder on a vCPU the hypervisor descheduled): nothing was
		// popped. Look again after the backoff, like for an empty map;
		// a held drain waits too and looks again (pending).
		f.busy = true
		if f.held {
			f.budget++
		}
		f.n.n.EmptyPolls++
		return nil, false, nil
	case err == unix.ENOENT:
		f.n.n.EmptyPolls++
		return nil, false, nil
	default:
		return nil, false, fmt.Errorf("pop %s: %w", f.name, closedErr(err))
	}
}

// pop takes the front (top) value into buf with one bpf(2) call of our
// own (internal/bpfcall.PopRaw: no cilium wrapping, no allocation on an
// empty map, RawSyscall; its doc says why that is safe for this call). The
// pop is the whole cost of a queue pump.
func (f *popFeed) pop() unix.Errno { return bpfcall.PopRaw(f.m.FD(), f.buf) }

// peek is the waiting goroutine's look: whether the map holds a value.
func (f *popFeed) peek() bool {
	if f.retry.Load() {
		return true // a held drain's refused pop: look again, whatever the map holds
	}
	e := bpfcall.PeekRaw(f.m.FD(), f.peeked)
	f.peeks.Add(1)
	if e != 0 {
		f.emptyPeeks.Add(1)
	}
	return e == 0
}

func (f *popFeed) wait(ctx context.Context) error {
	// A held drain waits only after a pop the kernel refused (EBUSY): it
	// must try the pop again after a pause even if a peek would find the
	// map empty (another consumer took the value meanwhile), or Close
	// would wait for a value that never comes.
	f.retry.Store(f.held && f.busy)
	err := f.reg.Wait(ctx, f.armed, f.found)
	f.armed, f.found = nil, false
	return err
}

func (f *popFeed) interrupt() { f.reg.Interrupt() }

// hold limits the rest of the drain to as many pops as the map can hold.
func (f *popFeed) hold() { f.held, f.budget = true, f.m.MaxEntries() }

func (f *popFeed) pending() bool { return f.held && f.busy }

// close unregisters the feed before it closes the clone the peeks use.
func (f *popFeed) close() error {
	f.pushed.Release()
	f.popped.Release()
	return firstErr(f.reg.Close(), f.m.Close())
}
