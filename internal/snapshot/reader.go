package snapshot

// reader is where a Table's sweeps read a map's entries: the kernel, through
// bpf(2) on the Table's own descriptor, or, in the fuzz target, plain
// memory. Errors are the kernel's errno values as they are (unix.ENOENT at
// the end of a sweep or for a missing key).
type reader interface {
	// lookupBatch reads up to count entries into keys and vals, after the
	// position held in cursor (from the start when first is true), and
	// leaves the next position in cursor. It returns the number read, and
	// unix.ENOENT (with a valid count) when the sweep reached the end.
	lookupBatch(cursor []byte, first bool, keys, vals []byte, count int) (int, error)
	// nextKey writes the key after prev (the first key when prev is nil)
	// into next; unix.ENOENT after the last key.
	nextKey(prev, next []byte) error
	// lookup reads key's value into val; unix.ENOENT when key is absent.
	lookup(key, val []byte) error
}

// kernel reads a map through bpf(2) on fd. Its attributes live as long as
// it does, so no call allocates.
type kernel struct {
	sys syscalls
	fd  int
}

func (k *kernel) lookupBatch(cursor []byte, first bool, keys, vals []byte, count int) (int, error) {
	return k.sys.lookupBatch(k.fd, cursor, first, keys, vals, count)
}

func (k *kernel) nextKey(prev, next []byte) error { return k.sys.nextKey(k.fd, prev, next) }

func (k *kernel) lookup(key, val []byte) error { return k.sys.lookup(k.fd, key, val) }
