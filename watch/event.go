package watch

import (
	"fmt"

	"github.com/bpfchan/bpfchan/internal/snapshot"
)

// Kind says how a map entry changed.
type Kind uint8

const (
	// Added: the key was absent at the previous poll and is present now.
	Added = Kind(snapshot.Added)
	// Updated: the key was present at both polls with unequal values.
	Updated = Kind(snapshot.Updated)
	// Deleted: the key was present at the previous poll and is absent now.
	Deleted = Kind(snapshot.Deleted)
)

func (k Kind) String() string { return snapshot.Kind(k).String() }

// Event is one change of a whole-map watcher. Old is the zero value for
// Added, New the zero value for Deleted.
type Event[K, V any] struct {
	Kind     Kind
	Key      K
	Old, New V
}

func (e Event[K, V]) String() string {
	switch e.Kind {
	case Added:
		return fmt.Sprintf("added %v: %v", e.Key, e.New)
	case Deleted:
		return fmt.Sprintf("deleted %v (was %v)", e.Key, e.Old)
	}
	return fmt.Sprintf("%s %v: %v -> %v", e.Kind, e.Key, e.Old, e.New)
}

// Change is one change of a key watcher. Present is false when the key was
// deleted (New is then the zero value and Old the last value seen). When the
// key appears, Present is true and Old is the zero value.
type Change[V any] struct {
	Old, New V
	Present  bool
}
