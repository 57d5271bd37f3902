// Package pump turns BPF maps into Go channels: one goroutine per map,
// owned by the handle its constructor returns.
//
// Sources take records out of the kernel and send them on C(): [RingBuf]
// and [RingBufBatches] for ring buffers, [RingBufAcked] for a ring whose
// records leave the kernel only when acknowledged, [Perf] and
// [PerfSamples] for perf event arrays, [Queue] and [Stack] for queue and
// stack maps. Sinks push the values sent on their C() into the kernel:
// [QueueWriter], [StackWriter], and [UserRingBuf] for a user ring buffer
// that a BPF program drains. A [Duplex] ([QueueChannel], [StackChannel])
// is both over one map. Every source runs the same loop (drain the map,
// send, wait for more); what differs is the feed it drains.
//
// # Ownership
//
// A constructor validates its arguments, takes its own clone of the
// caller's *ebpf.Map, starts one goroutine and returns its handle. With bad
// arguments (a map of the wrong type: maps.ErrMapType; a nil map:
// maps.ErrNilMap, which matches maps.ErrMapType too; a map already closed:
// maps.ErrClosed; a Go type whose size differs from the map's: [ErrSize];
// an invalid option or one the constructor does not take: [ErrOption]; a
// ctx already done) it returns an error that names the map and the
// problem, and starts nothing. The goroutine and the clone belong to the
// handle: Wait and Close return only after the goroutine has exited and
// released the clone and every other descriptor and mapping. Closing the
// caller's map at any time neither stops nor disturbs a handle, and a
// handle never touches a descriptor number the caller closed.
//
// A source's C() is made and closed by the pump, once, after its last send,
// so `for v := range src.C()` always ends. A sink's C() is the exception:
// the caller sends on it and closes it to say "no more"; the pump then
// pushes every value it received before Wait returns. Every handle has
// Done(), closed when its goroutine has exited: a caller that sends on a
// sink which may stop on an error (FullFail) selects on it, since nothing
// receives from C() after that. The two directions of a Duplex stop
// together: an error in one cancels the other with that error.
//
// # Stopping: Close delivers, cancel aborts
//
// Close is graceful: a source delivers what the kernel buffer holds when
// the pump sees Close (a consumer must keep receiving until C() closes) and
// no more: records produced after that are left in the map. A sink pushes
// every value whose send completed. Cancelling the constructor's ctx stops
// the pump at once, interrupting a wait in the kernel.
//
// So Close is for "deliver the rest"; a consumer that stops early cancels
// instead. `defer src.Close()` in a function that returns before C() is
// drained would wait forever for a receiver: give the pump a ctx you
// cancel, and defer that:
//
//	ctx, cancel := context.WithCancel(ctx)
//	defer cancel() // an early return stops the pump
//	src, err := pump.RingBuf[Event](ctx, m)
//
// After an abort a source takes back what it had put in C()'s buffer that
// no receiver took, counts it Dropped, and only then closes C(): Delivered
// is exactly what receivers got. A sink that stops on an error or a cancel
// counts the values whose send completed but that it never took from C()
// as Received and Dropped. [RingBufAcked] is the exception to both:
// its Close is prompt (the ring keeps what is not acknowledged), and what
// it takes back stays in the ring, uncounted.
//
// Wait returns nil after Close, context.Cause(ctx) after a cancel, and
// otherwise the error that stopped the pump, naming the map: a decoder
// that panicked ([ErrPanic]), a full map with [FullFail] (maps.ErrFull), a
// ring whose positions make no sense (a corrupt ring).
//
// A graceful Close takes a budget when the pump sees it: the ring's records
// up to its producer position (a record still reserved then is waited for
// until its producer commits or discards it, however long that takes:
// cancelling ctx bounds the wait), a queue's or stack's capacity in pops
// (a pop the kernel refuses with EBUSY is retried), the perf buffers' size,
// read once more after Close so that a loss the kernel reported with a
// trailing sample is counted.
//
// # Stats
//
// Stats accounts for every record: once a pump has stopped, Received ==
// Delivered + Dropped + DecodeErrors, and when C() is closed Stats are
// already final (a consumer that ranges over C() and then reads Stats sees
// the identity hold without calling Wait). While a pump runs, Stats are a
// recent snapshot: published whenever the pump is about to block, and
// about once per 64 records under sustained load. A record of the wrong
// size is a decode error, counted, never a stop. With [chans.DropNewest] or
// [chans.DropOldest] (WithOverflow) a slow consumer costs records, counted;
// a value evicted from C()'s buffer by DropOldest counts as dropped, not
// delivered. Perf lost-sample reports are counted in LostSamples (see
// [Perf] for when the kernel makes them).
//
// # One reader per ring or perf map, many consumers
//
// A ring buffer or perf array has one reader in a process: a second
// RingBuf, RingBufBatches, RingBufAcked or Perf pump on the same map fails
// with [ErrBusy] (naming the map) until the first has stopped, because two
// readers would split its records unpredictably or (ring buffers, each
// reader keeping its own position) deliver duplicates; a user ring buffer
// has one [UserRingBuf] writer for the same reason. Several consumers
// share one pump's C(): each value goes to exactly one of them. Queue and
// stack maps may have several pumps; each pops disjoint values.
//
// # Batches
//
// [RingBufBatches] and [RingBufAcked] send slices of up to the batch size
// (default 256), flushed early when the ring is empty or the oldest record
// reaches the batch age (default 1 ms; 0 means no age flush). A received
// batch belongs to the receiver, which may keep it forever; handing it
// back with Recycle once done lets the pump reuse its memory: zero
// allocations per batch.
//
// With a buffered C() (WithBuffer), a single-value source decodes a short
// run of values (at most 64) before sending them one after another, so a
// consumer that keeps up is woken once per run rather than once per value.
// A run is sent as soon as the map is empty. With the default unbuffered
// C() a queue or stack pump holds at most one popped value that no
// receiver has taken (with WithBuffer(n), n in C() and one in hand). LIFO
// order is therefore exact only for the values already in a stack: a
// Stack pump pops ahead of its receiver. A program that needs strict
// pop-on-demand (undo/redo) uses maps.Stack.PopWait.
//
// # Waiting, and what idle costs
//
// Every ring-buffer, user-ring and queue handle of a process waits through
// one goroutine (internal/netpoll): one epoll instance registered with
// Go's netpoller, which holds each handle's clone (edge-triggered; the
// caller's file description is not changed), and one timer for the
// periodic looks, aligned so that idle handles with the same period are
// looked at in the same wake-up. An idle handle parks on a channel: no OS
// thread, no timer and one descriptor of its own. The loop starts with the
// first such handle and stops with the last. Idle cost therefore does not
// grow with the number of handles but by one look each per period: an
// atomic load of a ring's producer position, or one bpf(2) peek of a queue.
//
// Ring pumps read the ring through their own mapping of its memory
// (internal/ringread), not cilium's ringbuf.Reader: records are decoded
// straight out of the ring with no lock and no copy (a WithDecoder
// function or a type's UnmarshalBinary gets a copy, valid until the next
// record, that it may write to), and an empty ring is seen from one load.
// The space of each record goes back to the producer as soon as the pump
// has read the next one. A BPF producer wakes the reader only for a record
// written at the position the reader last published; before it publishes
// that it caught up and parks, a pump that found the ring empty yields up
// to 16 times watching for a record, which saves a wake-up per record
// (an irq_work in the producer, a trip through the scheduler) when the
// producer is still at work, at a few microseconds of CPU per idle
// transition. Records submitted with BPF_RB_NO_WAKEUP raise no event: the
// periodic look (WithDrainInterval, default 100 ms) finds them. A record
// still being written (reserved, not committed) is waited for briefly,
// then like an empty ring: its commit wakes the pump.
//
// Queue and stack maps offer no readiness notification. Their pumps pop
// without pausing while values come; on an empty map the waiting goroutine
// peeks at it, after the WithPoll minimum (DefaultPollMin), the period
// doubling to the maximum (DefaultPollMax), and wakes the pump only when a
// value is there. A push made by this package's writers to the same map
// in this process wakes its pumps at once, and a pop wakes writers waiting
// for room (FullBlock). A value pushed by a BPF program into an idle
// queue waits up to the poll maximum.
//
// A perf pump blocks an OS thread in cilium's perf reader while idle (it
// has no netpoller integration).
//
// The measured costs (latency, throughput against raw cilium/ebpf, idle
// CPU at thousands of handles) and the commands that reproduce them are in
// the repository's PERFORMANCE.md.
//
// # Errors
//
// Construction errors match maps.ErrMapType, maps.ErrClosed, [ErrSize],
// [ErrOption] or [ErrBusy]; a decoder's or encoder's panic matches
// [ErrPanic]. Kernel errors are wrapped with the operation and the map
// (`pop Queue map "jobs" (id 7): ...`), a full map is maps.ErrFull, an
// empty one (Peek) maps.ErrEmpty. Every error is one line.
package pump
