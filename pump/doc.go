// Package pump turns BPF maps into Go channels: one goroutine per map,
// owned by the handle its constructor returns.
//
// Sources take records out of the kernel and send them on C(): [RingBuf]
// and [RingBufBatches] for ring buffers, [Perf] for perf event arrays,
// [Queue] and [Stack] for queue and stack maps. Sinks push the values sent
// on their C() into the kernel: [QueueWriter] and [StackWriter]. [Duplex]
// ([QueueChannel], [StackChannel]) is both over one map.
package pump
