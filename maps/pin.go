package maps

// Wrappers get Pin and Unpin from their handle (handle.go). The LoadPinned
// functions open a pinned map as a wrapper that owns the pin's new
// descriptor: its Unpin removes the pin. Each checks the map's type and the
// sizes of its Go types, as the matching Open function does.

// LoadPinned opens the map pinned at path as a Map, checking the sizes of
// K and V against it.
func LoadPinned[K, V any](path string) (*Map[K, V], error) {
	return loadPinned(path, adopt[K, V])
}

// LoadPinnedPerCPU opens the per-CPU map pinned at path.
func LoadPinnedPerCPU[K, V any](path string) (*PerCPUMap[K, V], error) {
	return loadPinned(path, adoptPerCPU[K, V])
}

// LoadPinnedQueue opens the queue pinned at path.
func LoadPinnedQueue[V any](path string) (*Queue[V], error) {
	return loadPinned(path, adoptQueue[V])
}

// LoadPinnedStack opens the stack pinned at path.
func LoadPinnedStack[V any](path string) (*Stack[V], error) {
	return loadPinned(path, adoptStack[V])
}

// LoadPinnedMapOfMaps opens the hash-of-maps or array-of-maps pinned at
// path.
func LoadPinnedMapOfMaps[K any](path string) (*MapOfMaps[K], error) {
	return loadPinned(path, adoptMapOfMaps[K])
}

// LoadPinnedBloomFilter opens the bloom filter pinned at path.
func LoadPinnedBloomFilter[V any](path string) (*Bloom[V], error) {
	return loadPinned(path, adoptBloom[V])
}
