// Package codec turns Go values into the bytes of BPF map keys, values and
// records, and back, without reflection on the hot path.
//
// A codec is built once per type with [For]; the checks happen there, so
// that decoding never fails on a type, only on bytes.
//
//   - A type of fixed binary size (binary.Size > 0) whose memory layout has
//     no padding is copied directly between its memory and the buffer, in
//     native byte order, exactly as the kernel and cilium/ebpf lay it out
//     ([Codec.Direct]; unexported fields are fine, nothing sets them by
//     name). If it holds a bool anywhere, each bool byte is made 0 or 1
//     after the copy: a byte 2 from the kernel decodes to true, never to a
//     value that is no Go bool. Such a type is not Direct, so callers that
//     copy memory themselves go through Decode instead.
//   - A fixed-size type with padding goes through encoding/binary (native
//     order), which skips the padding and sets the fields one by one through
//     reflection. Reflection cannot set an unexported field, so For refuses
//     such a type when any field it would have to set, at any depth, is
//     unexported, and names the field; blank (_) fields are skipped, as
//     encoding/binary skips them.
//   - Types implementing encoding.BinaryMarshaler and BinaryUnmarshaler (on
//     the value or its pointer) use those methods; their size is known only
//     per value. A panic in them is returned as an error matching
//     [ErrPanic].
//   - A []byte is the raw bytes.
//
// Decode and Encode never panic on any input bytes: a wrong length is an
// error matching [ErrSize]. Check compares a codec's size with the map's
// once, at construction, and names both sizes when they differ.
//
// Costs: a direct Decode or Encode is one memory copy; a type with bools
// adds a pass over its bool bytes; the encoding/binary path walks the type
// by reflection on every call. None of them allocates but for the bytes
// Encode appends beyond dst's capacity.
package codec
