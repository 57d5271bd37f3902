// Package maps gives typed, synchronous access to BPF maps.
package maps
