package maps

import "github.com/cilium/ebpf"

// noPrealloc is BPF_F_NO_PREALLOC, which the kernel requires of LPM tries.
const noPrealloc = 1

// LPMKey is the key of an LPM trie: the number of leading bits of Data that
// count, then the data itself, laid out as the kernel's
// struct bpf_lpm_trie_key_u8. Data is a byte array in network order, such
// as [4]byte for IPv4 or [16]byte for IPv6 (a type with padding also works:
// it is encoded without it). A lookup takes Prefix = all bits of Data and
// finds the longest stored prefix that matches.
type LPMKey[D any] struct {
	Prefix uint32
	Data   D
}

// NewLPMTrie creates a longest-prefix-match trie of at most maxEntries
// prefixes. Map.All walks it with NextKey (the kernel has no batches for
// tries).
func NewLPMTrie[D, V any](maxEntries uint32, opts ...MapOption) (*Map[LPMKey[D], V], error) {
	spec := specOf(ebpf.LPMTrie, maxEntries, opts)
	spec.Flags = noPrealloc
	return New[LPMKey[D], V](spec)
}
