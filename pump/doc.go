// Package pump turns BPF maps into Go channels: one goroutine per map,
// owned by the handle its constructor returns.
//
// Sources take records out of the kernel and send them on C(): [RingBuf]
// and [RingBufBatches] for ring buffers, [Perf] for perf event arrays,
// [Queue] and [Stack] for queue and stack maps. Sinks push the values sent
// on their C() into the kernel: [QueueWriter] and [StackWriter]. A [Duplex]
// ([QueueChannel], [StackChannel]) is both over one map. Every source runs
// the same loop (drain the map, send, wait for more); what differs is the
// feed it drains: the ring's shared memory (read directly, not through
// cilium's ring reader), cilium's perf reader, or a pop poller.
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
// Close: the ring's records up to its producer position (a record still
// reserved then is waited for until its producer commits or discards it,
// however long it takes: cancelling ctx bounds the wait), a
// queue's or stack's capacity in pops (a pop the kernel refuses with EBUSY
// is retried), the perf buffers' size (and a perf drain also ends once it
// finds the buffers empty at heads loaded after Close). A sink pushes every
// value whose send completed, even without C() being closed.
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
// idle pumps add no thread) and wakes only for the periodic drain below.
// It reads the ring through its own mapping of the ring's memory
// (internal/ringread), not cilium's ringbuf.Reader: records are decoded
// straight out of the ring with no lock and no copy (a WithDecoder
// function or a type's UnmarshalBinary gets a copy, valid until the next
// record, that it may write to), and an empty ring is seen from one load,
// with no syscall. The netpoller is edge-triggered, so the pump drains the
// ring before it waits again. The space of each record goes back to the
// producer as soon as the pump has read the next one; the last record read
// keeps its space until the pump is about to sleep. Records submitted with
// BPF_RB_NO_WAKEUP raise no event; a periodic drain (WithDrainInterval,
// default 100 ms) delivers them. A perf pump blocks an OS thread in
// cilium's reader (it has no netpoller integration).
//
// Before a ring pump that found the ring empty tells the kernel it caught
// up and parks, it yields up to 16 times (runtime.Gosched), watching for a
// record. A BPF producer wakes the reader for every record written at the
// position the reader last published; a reader that keeps up would be
// woken after nearly every record, and each wake-up costs the producer an
// irq_work (an expensive interrupt under virtualisation) and the reader a
// trip through the scheduler. While the pump lingers, the producer sends
// no wake-up, and a producer still at work has usually written the next
// record by the end of the yields. This costs a few microseconds of CPU
// each time the pump goes idle. A record still being written (reserved, not
// committed) is waited for briefly, then like an empty ring: its commit
// wakes the pump, so a BPF program that takes its time between reserve
// and submit cannot keep the pump spinning. A graceful Close waits for
// such a record if the ring held it when Close came (looking again after
// pauses of 10 µs, growing to 1 ms); cancelling ctx ends that wait.
//
// Measured on a 2-vCPU VM under nested virtualisation, raw cilium/ebpf in
// the same run (ratios; the machine is noisy, so ranges over runs):
//
//   - Wake-up latency, one 16-byte record produced to a goroutine holding
//     it (BenchmarkRingLatency, 3000 rounds, 3 runs): RingBuf pump median
//     4.9–5.1 µs, p99 16–23 µs; a consumer blocked in cilium's ReadInto
//     7.8–8.3 µs and 18–20 µs. The pump is quicker because it lingers:
//     a record written soon after the last one is found without a
//     wake-up.
//   - Consumer-bound (ring pre-filled, BenchmarkRingConsumer, 300,000
//     records, 3 runs): RingBufBatches with recycled batches costs
//     0.54–0.67× / 0.54–0.65× / 0.66–0.73× the time of a raw
//     ReadInto+decode loop per record at 16 / 64 / 256 bytes, 0
//     allocations per record.
//   - Producer-bound (a BPF producer running concurrently, a 64 MiB ring,
//     BenchmarkRingProducer at -benchtime 1000000x, 11 runs): throughput
//     against the raw consumer (blocking ReadInto), no record lost in
//     those runs. RingBufBatches: medians 1.04× / 1.06× / 1.08× at 16 /
//     64 / 256 bytes (runs 0.81–1.17×, 0.77–1.27×, 0.84–1.22×); RingBuf with
//     WithBuffer(1024): 1.18× / 1.06× / 1.04× (0.94–1.33×, 0.73–1.30×,
//     0.84–1.06×). The runs under 0.95× (8 of 66) are runs in which the
//     raw consumer was unusually fast (71–80 ns per record against its
//     usual 90–120); the pump's own time per record stays within 77–108
//     ns. Shorter runs (300,000 records) spread from 0.6× to 2.2× on this
//     VM: producer, pump and consumer share two CPUs, and the producer's
//     speed depends on how often it has to wake the reader.
//     On a later, slower day (raw 170–360 ns per record), RingBuf lost
//     records at 256 bytes in 7 of 21 runs (14,000–202,000 of 1,000,000),
//     batches and raw in none; the code as it was before that day's
//     changes lost records in 1 of 6 runs.
//     A single-value pump is bounded by the channel: one value through a
//     buffered Go channel costs 80–90 ns there with no BPF at all, a
//     minimal ring-to-channel loop 115–145 ns, RingBuf 170–220 ns (the
//     channel lock contended by a receiver draining as fast as the pump
//     sends), while the producer alone writes a 256-byte record every
//     150 ns. A producer that runs flat out until its lead over RingBuf
//     exceeds what the ring holds (254,000 such records in 64 MiB) makes
//     it lose records, and leaves even a bare loop of one channel
//     operation per value little margin; RingBufBatches (51–63 ns per
//     record) keeps up.
//   - Queue drain (BenchmarkQueueDrain, the pump started on a full queue,
//     construction and every value timed, 4 runs): 0.92–1.01× a raw
//     LookupAndDelete loop. The pump pops with its own bpf(2) call (see
//     poll.go); against a loop making that same bare call it reaches
//     0.77–0.80×: that difference is the channel hand-off per value.
//
// Queue and stack maps offer no readiness notification, so their pumps
// poll: without sleeping while values come, then backing off from 50 µs,
// doubling to 100 ms (WithPoll; DefaultPollMin, DefaultPollMax), the
// ring pumps' drain interval too: an idle source of any kind wakes 10
// times a second. What a wake-up costs is mostly the OS's and the hypervisor's,
// and it varies: on that VM a bare time.Sleep(40ms) loop took 90 µs of
// CPU per wake-up one day, 290 µs another. At 10 polls a second an idle
// poller takes 0.22–0.32% of a core on the slow day (BenchmarkQueueIdle;
// with the earlier 40 ms maximum, 25 polls a second: 0.22–0.43% on the
// fast day, 0.56–0.77% on the slow one). A push made by this package's
// writers to the same map in this process wakes the map's pollers at once
// (a value sent to a QueueWriter arrives on a Queue pump in about 3.5–4 µs
// at the median on the fast day, 6.9–7.1 µs on the slow one,
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
