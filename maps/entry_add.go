package maps

import "github.com/bpfchan/bpfchan/internal/kernatomic"

// Integer is what Add adds.
type Integer interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 |
		~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uintptr
}

// Add adds delta to the value of e and returns the new value, wrapping
// around like Go's integer addition. A missing key starts from zero and is
// created.
//
// On an atomic Entry without a validator, for an integer type stored as
// plain memory (no MarshalBinary of its own), this is one fetch-add: a single
// helper program run (or one sync/atomic add on a BPF_F_MMAPABLE array), no
// read before it. With a validator the sum must be checked before it is
// written, and an integer with its own encoding (say big-endian) cannot be
// added to in its encoded form, so Add is then Update's compare-and-swap
// loop (still atomic). On a non-atomic Entry it is the userspace
// read-modify-write described at Entry.
func Add[K any, V Integer](e *Entry[K, V], delta V) (V, error) {
	// The hot path, once bound: an integer copied as memory converts to
	// the helper's word with a plain conversion.
	if e.direct && e.validate == nil {
		if s := e.slot.Load(); s != nil {
			if old, ok := s.AddMmap64(uint64(delta)); ok {
				return V(old) + delta, nil
			}
			old, _, err := s.Add(uint64(delta))
			if err != nil {
				return 0, e.atomicErr("add", err)
			}
			return V(old) + delta, nil
		}
	}
	// Fetch-add adds the words' bits: right only for an integer stored as
	// plain memory in native byte order. One encoded by its own codec (say
	// big-endian) goes through the compare-and-swap loop, which decodes.
	if !e.atomic || e.validate != nil || !e.direct {
		return e.update("add", func(v V) V { return v + delta })
	}
	old, err := e.fetch("add", delta, (*kernatomic.Slot).Add)
	if err != nil {
		return 0, err
	}
	return old + delta, nil
}
