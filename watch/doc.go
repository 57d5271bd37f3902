// Package watch turns BPF hash and array maps into change streams: wait for a
// key to exist ([Key]), follow one key's value ([Changes]), or follow every
// entry of a map ([Map]).
//
// # How a map is read, and what it costs
//
// Watchers poll: the kernel has no notification of map writes. [Key] and
// [Changes] look one key up per poll (one syscall; none for a
// BPF_F_MMAPABLE array, whose shared memory is read directly). [Map] reads
// the whole map per poll with BPF_MAP_LOOKUP_BATCH and a cursor, 1024
// entries per syscall, never one syscall per key (a kernel that refuses
// batch lookups, before 5.6, is walked with GET_NEXT_KEY and a lookup per
// key, several times slower); an mmapable array is compared in place in its
// shared memory (mapped read-only by the watcher) with no syscall at all,
// orders of magnitude cheaper than any sweep: give a large array that is
// watched often BPF_F_MMAPABLE. Each poll is compared with the previous one
// on the raw bytes kept from it, so a poll that finds nothing changed
// decodes nothing and allocates nothing, whatever the map size; keys and
// values are decoded only for the entries that changed. Values compare by
// their bytes unless [WithEqual] is given.
//
// The cost of a whole-map watcher is therefore one sweep of the map per
// interval, whether or not anything changed, and memory for about three
// copies of the map's keys and values (one copy of the values for an
// mmapable array). Choose the interval from how stale a consumer may be, not
// from how often the map changes ([WithAdaptive] polls quickly only while it
// changes).
//
// Hash, LRU hash, array and LPM trie maps can be watched (for an LPM trie,
// Key and Changes follow what a lookup of k returns: its longest-prefix
// match). Queues, stacks, ring buffers, perf event arrays, per-CPU maps and
// maps of maps cannot: the constructors refuse them with an error matching
// [ErrMapType]. A key or value type whose size differs from the map's is an
// error naming both sizes. Every error names the map as every bpfchan error
// does: `watch Hash map "counts" (id 9): ...`.
//
// Every index of an array exists (array entries cannot be deleted): [Key] on
// an array returns the entry's current value at once, and [Changes] and [Map]
// report its entries only as Updated. To wait until an array entry changes,
// use [Changes].
//
// # Level-triggered: what a consumer sees
//
// A watcher reports the difference between two consecutive polls, not the
// writes that happened between them. Therefore:
//
//   - Intermediate values are invisible: a value that goes A→B→A between two
//     polls produces no event, and A→B→C produces one (A→C). A key created
//     and deleted between two polls is never seen; one deleted and re-created
//     between two polls is reported as Updated (Changes: Present stays true),
//     or not at all when its value is the same. A watcher cannot count
//     writes: a consumer that must see every value, not only the latest,
//     needs a ring buffer or a queue, not a watched map.
//   - An event means "at this poll the entry differed from the previous
//     poll". Entries written while a sweep is under way may be seen by that
//     sweep or by the next one; a sweep is not an atomic snapshot of the map.
//     Values read from an mmapable array are read without locking, so a
//     multi-word value being written by a BPF program may be seen torn and is
//     then corrected by the next poll.
//   - Nothing that is still different at the next poll is ever missed: once
//     the map stops changing, one more poll brings the watcher's view (the
//     initial state plus every event) into agreement with the map.
//
// The baseline is read before a constructor returns, so every change made
// after it returns is reported by a later poll (within the rules above). It
// is not reported itself unless [WithInitial] is given.
//
// # A slow consumer
//
// Polling never waits for the consumer and memory never grows beyond one
// pending event per key. While an event for a key is still undelivered, a
// newer change of the same key is merged into it:
//
//	Added   then Updated = Added, with the latest New
//	Added   then Deleted = nothing
//	Updated then Updated = Updated from the first Old to the latest New (nothing if they are equal)
//	Updated then Deleted = Deleted, with the first Old
//	Deleted then Added   = Updated from the first Old to the new New (nothing if equal)
//
// A key watcher's initial state ([WithInitial]) is never cancelled out: the
// consumer has seen nothing yet, so it always receives one event saying how
// the key is at its first look. A key present at the start and deleted
// before that look, or absent, created and deleted, gives one Change with
// Present false and Old the zero value.
//
// Events are delivered in the order their keys first changed. A consumer
// that falls behind therefore sees each key move from the state it last saw
// to the current one, exactly as if it had polled less often. Merged changes
// are counted in Stats.Coalesced.
//
// # Goroutines, ownership and stopping
//
// [Changes] and [Map] start one goroutine, owned by the returned [Watcher],
// which implements chans.Receiver: it polls, merges and sends on C(). There
// are two ways to stop it, as for every bpfchan source:
//
//   - Close is graceful: the watcher polls one last time, so that every change
//     made before Close is reported, delivers every pending event, then
//     closes C(); Wait returns nil. Close returns once the consumer has taken
//     them, so a consumer must keep reading C() until it closes (or cancel
//     ctx).
//   - Cancelling ctx aborts, also during a Close: the watcher stops at once,
//     drops what is pending (counted in Stats.Discarded) and closes C(); Wait
//     returns context.Cause(ctx).
//
// So Close is for "deliver the rest"; a consumer that stops early cancels
// instead. `defer w.Close()` in a function that returns before C() is
// drained would wait forever for a receiver: give the watcher a ctx you
// cancel, and defer that:
//
//	ctx, cancel := context.WithCancel(ctx)
//	defer cancel() // an early return stops the watcher
//	w, err := watch.Map[uint32, uint64](ctx, m)
//
// A poll that fails (the kernel refuses a lookup) also stops the watcher,
// dropping what is pending; Wait returns that error. Stats accounts for
// every observed change, and is final when C() is closed: a consumer that
// ranges over C() and then reads Stats sees, without calling Wait,
//
//	Changes == Events + Coalesced + Discarded + DecodeErrors
//
// Done is closed when the goroutine has exited. A stop request is seen at
// once, except by a poll already under way, which finishes first (one sweep
// of the map).
//
// [Key] starts no goroutine; it polls in the caller's goroutine until the key
// exists or ctx ends. A ctx already cancelled returns at once; one whose
// deadline has passed gets exactly one look.
//
// Every watcher, and Key while it runs, reads through its own clone of the
// caller's *ebpf.Map, taken before the constructor returns and released when
// it stops (a watcher of an mmapable array keeps its read-only mapping of the
// array's memory instead of a descriptor). The caller may close its map at
// any time after the constructor returned: that neither stops nor disturbs
// the watcher, which goes on reporting the map's changes (made by BPF
// programs or through other descriptors) until it is stopped, and never
// touches a descriptor number the process may have reused. A map already
// closed when a constructor is called is refused with an error matching
// [ErrClosed], a nil map with maps.ErrNilMap (which matches [ErrMapType]
// too), an array index not below MaxEntries with maps.ErrOutOfRange, an
// invalid option with [ErrOption]; a refused constructor starts nothing
// and holds no descriptor.
//
// # Intervals
//
// The pause between the end of one poll and the start of the next is
// [DefaultKeyInterval] for Key and Changes and [DefaultMapInterval] for Map,
// or [WithInterval]. [WithAdaptive](min, max) polls every min while the map
// changes and doubles the pause after each quiet poll, up to max.
package watch
