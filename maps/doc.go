// Package maps gives typed, synchronous access to BPF maps: one Go call is
// one kernel operation (or one batch of them), with Go types for keys and
// values instead of bytes.
//
// The package shares its name with the standard library's maps; import it
// as bpfmaps where both are needed:
//
//	import bpfmaps "github.com/bpfchan/bpfchan/maps"
//
// # Types
//
//   - [Map] for maps with one value per key: hash ([NewHash]), LRU hash
//     ([NewLRUHash]), array ([NewArray]), LPM trie ([NewLPMTrie] with
//     [LPMKey]), and local storage maps through [Open] (the kernel makes
//     them only with BTF, as a loader does). Maps of kernel objects (program
//     arrays, device, CPU and socket maps, stack traces) are refused with
//     ErrMapType: use their *ebpf.Map.
//   - [PerCPUMap] for per-CPU hash, array and LRU hash: a value is a []V with
//     one element per possible CPU ([ebpf.PossibleCPU]); [Sum] adds them.
//   - [Queue] (FIFO) and [Stack] (LIFO): Push, PushOverwrite, Pop, Peek and
//     PopWait.
//   - [MapOfMaps] for hash-of-maps and array-of-maps, [Bloom] for bloom
//     filters, [NewRingBuf] for a ring buffer (BPF programs write, package
//     pump reads) and [NewUserRingBuf] for a user ring buffer (package pump
//     writes, a BPF program drains).
//
// # Lifetimes
//
// There are no goroutines here. Every wrapper owns one file descriptor and
// must be closed. Constructors named New* create a map; Open* wrap a clone
// of the caller's *ebpf.Map, so the caller keeps, and closes, its own (the
// usual case with bpf2go objects); an Open* of a map already closed fails
// with ErrClosed, of a nil one with ErrNilMap, which matches ErrMapType too
// (as in every package of the module). Map() returns the wrapper's
// own *ebpf.Map: do not close it. Wrappers are safe for concurrent use, and
// Close may be called while other calls run: those complete on the open map
// or fail with ErrClosed, never with EBADF or on a descriptor number the
// process has reused.
//
// # Names
//
// Every New* constructor takes [MapOption]s; [WithName] names the map in the
// kernel (bpftool map show lists it) and in every error. [New] and
// [NewPerCPU] take the name from the spec. A name the kernel would refuse,
// or cilium would cut (more than 15 characters, or one outside A-Z, a-z,
// 0-9, _ and the dot), fails with ErrInvalidName. A map made without a name
// is named in errors by its type and ID.
//
// # Pinning
//
// Every wrapper has Pin (to a path on a bpf filesystem, usually under
// /sys/fs/bpf; the map then outlives its descriptors and the process) and
// Unpin. The LoadPinned functions ([LoadPinned], [LoadPinnedPerCPU],
// [LoadPinnedQueue], [LoadPinnedStack], [LoadPinnedMapOfMaps],
// [LoadPinnedBloomFilter]) open a pinned map, checking its type and sizes as
// Open does. Unpin removes the pin the wrapper made, or the one it was
// loaded from; a wrapper made by Open wraps a clone, which has no pin of
// its own: unpin through the original *ebpf.Map.
//
// # Codecs
//
// A key or value type must have a fixed binary size (binary.Size > 0), or
// implement encoding.BinaryMarshaler and BinaryUnmarshaler, or be []byte. Its
// size is checked once, against the map's, when the wrapper is made: a
// mismatch is an error naming both sizes and the map. A padded type is
// encoded without its padding by encoding/binary, which sets its fields
// through reflection, so a padded type with an unexported field is refused
// then, naming the field. Decoding never panics on what the kernel returns;
// a bool is decoded as true for any byte but 0.
//
// # Costs
//
// Each call of Map, Queue, Stack and Bloom is one map syscall. A type
// without padding (or bools) is handed to the kernel as its own memory: no
// reflection and no encoding buffer. A padded type, a
// BinaryMarshaler or a []byte is encoded into a fresh buffer on each call,
// and a padded one by reflection. PerCPUMap encodes each CPU's value with the
// codec too, but cilium lays the per-CPU values out with reflection on each
// call. All, Keys, Drain and Clear read 1024 elements per batch syscall
// where the map type has batches; LPM tries have none and cost one NextKey
// and one Lookup per element. The kernel-atomic Entry ops cost one run of a
// helper program each (a syscall), or no syscall at all on a BPF_F_MMAPABLE
// array; the userspace fallback costs two lookups and an update per
// read-modify-write. Queue.PopWait polls: the kernel has no readiness
// notification for queues and stacks.
//
// # Errors
//
// Every error names the operation and the map, as every package of the
// module names a map (`lookup Hash map "counts" (id 12): key does not
// exist`; `Hash map (id 12)` for an unnamed map), is one line, and wraps one
// of the sentinels, to be matched with errors.Is: [ErrKeyNotExist] and
// [ErrKeyExist] (cilium's own), [ErrFull] (a full hash map, queue or stack,
// where the kernel says E2BIG, or LPM trie, where it says ENOSPC), [ErrEmpty]
// (pop or peek of an empty queue or stack; a popped zero value is a value),
// [ErrClosed], [ErrOutOfRange] (an array index not below MaxEntries),
// [ErrSizeMismatch], [ErrMapType] (a wrapper that does not fit the map's
// type), [ErrNilMap] (a nil map or spec; it matches ErrMapType too),
// [ErrInvalidSize] (a ring size, a key or value size the spec must give),
// [ErrInvalidName], [ErrInvalid] (a validator's verdict). Array elements
// cannot be deleted: Delete on an array wraps errors.ErrUnsupported. Bad
// input returns an error; nothing panics except a nil error pointer given
// to All or Keys, and an Entry given a validator for another value type.
//
// # Iteration and batches
//
// All and Keys return iterators that read the map lazily, 1024 elements per
// BPF_MAP_LOOKUP_BATCH syscall, growing the buffer when a hash bucket does
// not fit (ENOSPC). The iteration's error lands in the *error given to All
// when the loop ends; a break ends it cleanly with a nil error. No lock is
// held while the loop body runs: it may read, write or close the map.
//
// What a walk guarantees while the map changes underneath (BPF programs or
// other goroutines writing): a hash walk reads bucket by bucket, each bucket
// once and whole, so no key is yielded twice, and every key that stays in the
// map for the whole walk is yielded exactly once. Keys inserted or deleted
// during the walk may or may not be yielded, and values are as of the moment
// their batch was read (a key deleted after that is still yielded). An array
// walk yields every index once, in order. Map types without batch support
// (LPM tries) are walked with NextKey and Lookup; there, deleting the key
// under the cursor makes the kernel restart from the first key, so keys may
// be yielded twice, and the walk gives up with ebpf.ErrIterationAborted
// after about four times MaxEntries steps.
//
// BatchPut and BatchDelete (of Map and PerCPUMap) write or delete many
// elements in one syscall and return how many the kernel really processed,
// with the error that stopped it. Drain removes everything with
// lookup-and-delete batches and returns what it removed (arrays and LPM
// tries cannot be drained: ErrMapType); an element that fails to decode is
// reported in its error, never dropped silently. Clear deletes everything
// (zeroes an array).
//
// # Hazards
//
// Entry ops are atomic against BPF programs' atomic instructions, not
// against plain map updates of the same key, and not against deleting the
// key (see Entry). A Map of an mmapable array that an Entry mapped writable
// cannot be frozen until Close. Closing the *ebpf.Map that Map() returns
// breaks the wrapper; close the wrapper.
package maps
