// Package pump turns BPF maps into Go channels: one goroutine per map,
// owned by the handle its constructor returns.
//
// Sources take records out of the kernel and send them on C(): [RingBuf]
// and [RingBufBatches] for ring buffers, [Perf] for perf event arrays,
// [Queue] and [Stack] for queue and stack maps. Sinks push the values sent
// on their C() into the kernel: [QueueWriter] and [StackWriter]. A [Duplex]
// ([QueueChannel], [StackChannel]) is both over one map. Every source runs
// the same loop (drain the map, send, wait for more); what differs is the
// feed it drains: cilium's ring reader, its perf reader, or a
// LookupAndDelete poller.
//
// # Ownership
//
// A constructor validates its arguments, starts one goroutine and returns
// its handle; with bad arguments (a nil map, a map of the wrong type, a Go
// type whose size differs from the map's, an option the constructor does not
// take, a ctx already done) it returns an error that names the map and the
// problem, and starts nothing. The goroutine belongs to the handle: Wait and
// Close return only after it has exited and released its descriptors. The
// pump does not own the *ebpf.Map; the caller closes it after the pump has
// stopped.
//
// A source's C() is made and closed by the pump, once, after its last send,
// so `for v := range src.C()` always ends. A sink's C() is the exception:
// the caller sends on it and closes it to say "no more"; the pump then
// pushes every value it received before Wait returns. Every handle has
// Done(), closed when its goroutine has exited: a caller that sends on a
// sink which may stop on an error (FullFail, a closed map) selects on it,
// since nothing receives from C() after that. The two directions of a
// Duplex stop together: an error in one cancels the other with that error.
//
// # Stopping
//
// Close is graceful: a source delivers what the kernel buffer holds when
// the pump sees Close (a consumer must keep receiving until C() closes) and
// no more: records produced after that are left in the map, so a producer
// that keeps up cannot delay Close. The pump takes a budget when it sees
// Close: the ring's unread bytes, a queue's or stack's capacity in pops,
// the perf buffers' size (and a perf drain also ends once it finds the
// buffers empty at heads loaded after Close). A sink pushes every value
// whose send completed, even without C() being closed.
// Cancelling the constructor's ctx stops the pump at once, interrupting a
// wait in the kernel (the netpoller deadline, the perf reader's Flush, the
// poller's timer); a value in hand is then counted as dropped. Wait returns
// nil after Close, context.Cause(ctx) after a cancel, and otherwise the
// error that stopped the pump, naming the map: a map closed under a running
// pump (maps.ErrClosed), a decoder that panicked ([ErrPanic], carrying the
// panic value), a full map with [FullFail] (maps.ErrFull).
//
// Stats accounts for every record: once a pump has stopped, Received ==
// Delivered + Dropped + DecodeErrors. A record of the wrong size is a
// decode error, counted, never a stop. With [chans.DropNewest] or
// [chans.DropOldest] (WithOverflow) a slow consumer costs records, counted;
// a value evicted from C()'s buffer by DropOldest counts as dropped, not
// delivered. Perf lost-sample reports are counted in LostSamples.
//
// # One reader per ring or perf map, many consumers
//
// A ring buffer or perf array has one reader in a process: a second
// RingBuf, RingBufBatches or Perf pump on the same map fails with
// [ErrBusy] (naming the map) until the first has stopped, because two
// readers would split its records unpredictably, or (ring buffers, each
// reader keeping its own position) deliver duplicates. Several consumers
// share one pump's C(): each value goes to exactly one of them. Queue and
// stack maps may have several pumps; each pops disjoint values.
//
// # Batches
//
// [RingBufBatches] sends slices of up to the batch size (default 256),
// flushed early when the ring is empty or the oldest record reaches the
// batch age (default 1 ms). A received batch belongs to the receiver, which
// may keep it forever. Handing it back with [Source.Recycle] once done lets
// the pump reuse its memory: zero allocations per batch.
//
// With a buffered C() (WithBuffer), a single-value source decodes a short
// run of values (at most 64) before sending them one after another, so a
// consumer that keeps up is woken once per run rather than once per value.
// A run is sent as soon as the map is empty. With the default unbuffered
// C() a value is sent as soon as it is decoded: a queue or stack pump holds
// at most one popped value that no receiver has taken (with WithBuffer(n),
// n in C() and one in hand). LIFO order is therefore exact only for the
// values already in a stack: a Stack pump or StackChannel pops ahead of its
// receiver, so after 1 then 2 are pushed the first value out can be 1. A
// program that needs strict pop-on-demand (undo/redo) uses
// maps.Stack.PopWait.
//
// # Waiting, and what it costs
//
// A ring-buffer pump waits for data in Go's netpoller, on a non-blocking
// duplicate of the map's descriptor: an idle pump holds no OS thread (100
// idle pumps add no thread) and wakes only for the periodic drain below. The netpoller is edge-triggered, so
// the pump drains the ring completely (cilium's ReadInto, made
// non-blocking by a deadline in the past) before it waits again. Records
// submitted with BPF_RB_NO_WAKEUP raise no event; a periodic drain
// (WithDrainInterval, default 100 ms) delivers them. A perf pump blocks an
// OS thread in cilium's reader (it has no netpoller integration).
//
// The netpoller costs at most about a microsecond of wake-up latency
// against a consumer blocked directly in cilium's epoll_wait. Measured on a
// 2-vCPU VM (BenchmarkRingLatency, one 16-byte record produced, then the
// time until a goroutine holds it; 2000–3000 rounds, several runs): raw
// blocking ReadInto median 7.6–10.0 µs, p99 17–84 µs; RingBuf pump median
// 8.5–9.5 µs, p99 21–39 µs (re-measured: raw 7.7–7.8 µs and 19 µs, pump
// 9.1 µs and 24–25 µs). A runtime.Gosched after a flush that empties
// the ring made no measurable difference with the netpoller (the pump
// parks right after its send, which hands its P to the consumer), so the
// pump does not yield.
//
// Throughput, same machine, raw cilium in the same run (re-measured after
// the benchmarks were made fair; the machine is shared, so figures taken
// while it was busy spread widely). With the ring pre-filled,
// RingBufBatches (recycled batches, 0 allocations per record) costs
// 1.15–1.20× a raw ReadInto+decode loop per 16-byte record, 1.12–1.13× at
// 64 bytes and 1.00–1.08× at 256 bytes on a quiet machine
// (BenchmarkRingConsumer, 300,000 records; 1.09–2.67× while others ran
// tests). With a BPF producer running concurrently (BenchmarkRingProducer,
// a 64 MiB ring, 300,000 records, the raw consumer blocking in ReadInto
// with no per-record deadline, each path timed to its last record) no path
// lost a record; the throughput ratios against raw spread from
// 0.54–1.72× (RingBufBatches) and 0.63–1.17× (RingBuf, WithBuffer(1024))
// over runs, dominated by how the producer, the consumer and other work
// share the two CPUs: the 0.95× target is not shown to hold. The queue
// pump drains at 0.79–0.82× a raw LookupAndDelete loop
// (BenchmarkQueueDrain, the pump started on a full queue, its
// construction and every value timed; the earlier 0.86–0.89× timed from
// the second value after the pump had already popped some): one channel
// hand-off per value on top of the ~350 ns syscall; the 0.9× target is
// missed.
//
// Queue and stack maps offer no readiness notification, so their pumps
// poll: without sleeping while values come, then backing off from 50 µs,
// doubling to 40 ms (WithPoll; DefaultPollMin, DefaultPollMax). An idle
// poller at the defaults makes 25 polls a second, each costing about
// 100 µs of CPU on that VM (mostly the OS wake-up), 0.22–0.43% of a core
// in all (BenchmarkQueueIdle). A push made by this package's writers to the
// same map in this process wakes the map's pollers at once (a value sent to
// a QueueWriter arrives on a Queue pump in about 4 µs at the median,
// BenchmarkWriterToSource), and a pop wakes writers waiting for room
// (FullBlock). A value pushed by a BPF program into an idle queue waits up
// to the poll maximum.
//
// # Errors
//
// Construction errors match [ErrMapType], [ErrSize] or [ErrOption]; a
// decoder's or encoder's panic matches [ErrPanic]. Kernel errors are
// wrapped with the operation and the map ("pop Queue map \"jobs\" (id 7):
// ..."), a full map is maps.ErrFull, an empty one (Peek) maps.ErrEmpty, and
// a descriptor closed under the pump maps.ErrClosed.
package pump
