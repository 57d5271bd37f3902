// Package netpoll is the one place where every bpfchan handle of a process
// waits for the kernel: one goroutine, one epoll instance registered with
// Go's netpoller, one timer (DESIGN rule 8).
//
// A handle registers what it waits for ([Register]): a descriptor and the
// epoll events that mean "look again" (a ring buffer's new record, a user
// ring buffer's freed space), and a Ready func with a period at which the
// loop calls it (the periodic look that finds records written with
// BPF_RB_NO_WAKEUP, a queue's peek). Then it waits with [Reg.Wait], which
// parks its goroutine on a channel: an idle handle holds no OS thread, no
// timer and no descriptor of its own besides the one it registered.
//
// The loop goroutine belongs to the registrations: the first Register
// starts it, the last [Reg.Close] stops it and waits for it to exit (no
// goroutine in init, none left behind). It parks in the netpoller on its
// epoll descriptor with a deadline at the earliest look that is due. On an
// event it wakes the waiting owner of that descriptor; at a look it calls
// Ready for the registrations that are due and wakes those whose Ready
// reports true. Looks are aligned on a grid of their own period, so every
// idle registration with the same period is looked at in the same wake-up
// of the loop: 10,000 idle rings with a 100 ms drain cost ten wake-ups a
// second, like ten rings, plus one Ready call each.
//
// Ready runs on the loop goroutine, for owners that wait when their look
// begins (an owner woken meanwhile, by its event or Wake, may already be
// at work when its Ready is called: Ready must be safe beside it), and
// never after Close returned: Close is where an owner unregisters before
// it unmaps what Ready reads. A Ready that makes a syscall (a queue's peek)
// delays every other registration's look by its cost; the events that
// arrive during a long sweep are dispatched every 64 Ready calls, and the
// loop yields to the owners they woke.
//
// Registered descriptors are added to the epoll instance edge-triggered;
// their file description is not otherwise changed (no O_NONBLOCK is set on
// a description the caller shares through dup).
package netpoll
