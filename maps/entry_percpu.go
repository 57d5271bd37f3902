package maps

// PerCPUEntry is one key of a PerCPUMap: one value per possible CPU. It
// makes no atomicity claims: BPF programs write their own CPU's value
// without locks, Load copies the values one after the other (not at one
// instant), and Store replaces all of them, so an update a program makes
// between a Load and a Store is lost. Use it to read counters kept per CPU
// (LoadSum adds them up) and to reset them.
type PerCPUEntry[K, V any] struct {
	m *PerCPUMap[K, V]
	k K
}

// Entry returns the entry of key k.
func (m *PerCPUMap[K, V]) Entry(k K) *PerCPUEntry[K, V] {
	return &PerCPUEntry[K, V]{m: m, k: k}
}

// Atomic is always false: see PerCPUEntry.
func (e *PerCPUEntry[K, V]) Atomic() bool { return false }

// Load returns the values, one per possible CPU, indexed by CPU number;
// ErrKeyNotExist when the key is absent.
func (e *PerCPUEntry[K, V]) Load() ([]V, error) { return e.m.Lookup(e.k) }

// Store sets the values, values[i] on CPU i (fewer than CPUs leaves the
// others zero), creating the key when it is missing.
func (e *PerCPUEntry[K, V]) Store(values []V) error { return e.m.Put(e.k, values) }

// LoadSum returns the sum of e's values over all CPUs.
func LoadSum[K any, V Number](e *PerCPUEntry[K, V]) (V, error) {
	vals, err := e.Load()
	if err != nil {
		var zero V
		return zero, err
	}
	return Sum(vals), nil
}
