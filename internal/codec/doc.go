// Package codec turns Go values into the bytes of BPF map keys, values and
// records, and back, without reflection on the hot path.
//
// A codec is built once per type with [For]. A type of fixed binary size
// (binary.Size > 0) whose memory layout has no padding is copied directly
// between its memory and the buffer, in native byte order, exactly as the
// kernel and cilium/ebpf lay it out. A fixed-size type with padding goes
// through encoding/binary (native order), which skips the padding. Types
// implementing encoding.BinaryMarshaler / BinaryUnmarshaler (on the value or
// its pointer) use those methods; their size is known only per value. A
// []byte is the raw bytes.
//
// Check compares a codec's size with the map's once, at construction, and
// names both sizes when they differ.
package codec
