package producer

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/bpfchan/bpfchan/internal/bpfasm"
)

// maxStackRecord bounds records built on the BPF stack (perf samples, queue
// values): 512 bytes of stack, less what the producer itself uses.
const maxStackRecord = 480

func apply(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o
}

// NewRing loads a producer that writes one record of size bytes into the
// ring buffer rb per run (bpf_ringbuf_reserve/submit). The record starts
// with the run's sequence number (uint64, little-endian, truncated when size
// is under 8); the rest is zero. A full ring counts the run as lost. With
// Discard the record is reserved and filled, then discarded.
func NewRing(rb *ebpf.Map, size int, opts ...Option) (*Producer, error) {
	if rb == nil || rb.Type() != ebpf.RingBuf {
		return nil, fmt.Errorf("ring producer: need a ring buffer map")
	}
	if size < 1 {
		return nil, fmt.Errorf("ring producer: record size %d, want at least 1", size)
	}
	o := apply(opts)
	return load("bpfchan_ring", func(insns asm.Instructions) asm.Instructions {
		insns = append(insns,
			asm.LoadMapPtr(asm.R1, rb.FD()),
			asm.Mov.Imm(asm.R2, int32(size)),
			asm.Mov.Imm(asm.R3, 0),
			asm.FnRingbufReserve.Call(),
			asm.JEq.Imm(asm.R0, 0, "lost"),
		)
		insns = fill(insns, asm.R0, 0, size)
		release := asm.FnRingbufSubmit
		if o.discard {
			release = asm.FnRingbufDiscard
		}
		return append(insns,
			asm.Mov.Reg(asm.R1, asm.R0),
			asm.Mov.Imm(asm.R2, int32(o.flags)),
			release.Call(),
		)
	})
}

// NewPerf loads a producer that writes one sample of size bytes (at most
// 480) into the perf event array m per run, on the current CPU. A sample the
// kernel could not write counts the run as lost here; samples dropped for a
// full per-CPU buffer are reported by the perf reader instead.
func NewPerf(m *ebpf.Map, size int) (*Producer, error) {
	if m == nil || m.Type() != ebpf.PerfEventArray {
		return nil, fmt.Errorf("perf producer: need a perf event array")
	}
	if size < 1 || size > maxStackRecord {
		return nil, fmt.Errorf("perf producer: sample size %d, want 1..%d", size, maxStackRecord)
	}
	off := -int16(8 + (size+7)/8*8)
	return load("bpfchan_perf", func(insns asm.Instructions) asm.Instructions {
		insns = fill(insns, asm.RFP, off, size)
		return append(insns,
			asm.Mov.Reg(asm.R1, asm.R9),
			asm.LoadMapPtr(asm.R2, m.FD()),
			asm.Mov.Imm32(asm.R3, -1), // BPF_F_CURRENT_CPU
			asm.Mov.Reg(asm.R4, asm.RFP),
			asm.Add.Imm(asm.R4, int32(off)),
			asm.Mov.Imm(asm.R5, int32(size)),
			asm.FnPerfEventOutput.Call(),
			asm.JNE.Imm(asm.R0, 0, "lost"),
		)
	})
}

// NewPush loads a producer that pushes one value per run into the queue or
// stack map m. The value (m's value size, at most 480 bytes) starts with the
// sequence number; the rest is zero. A full map counts the run as lost,
// unless Overwrite is given.
func NewPush(m *ebpf.Map, opts ...Option) (*Producer, error) {
	if m == nil || (m.Type() != ebpf.Queue && m.Type() != ebpf.Stack) {
		return nil, fmt.Errorf("push producer: need a queue or stack map")
	}
	size := int(m.ValueSize())
	if size < 1 || size > maxStackRecord {
		return nil, fmt.Errorf("push producer: value size %d, want 1..%d", size, maxStackRecord)
	}
	o := apply(opts)
	off := -int16(8 + (size+7)/8*8)
	return load("bpfchan_push", func(insns asm.Instructions) asm.Instructions {
		insns = fill(insns, asm.RFP, off, size)
		return append(insns,
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, int32(off)),
			asm.Mov.Imm(asm.R3, int32(o.flags)),
			asm.FnMapPushElem.Call(),
			asm.JNE.Imm(asm.R0, 0, "lost"),
		)
	})
}

// NewHashAdd loads a producer that atomically adds delta to the value of
// key in m (a hash, LRU hash or array map with 4-byte keys and 4- or 8-byte
// values) per run, creating the key with value 0 when it is missing.
func NewHashAdd(m *ebpf.Map, key uint32, delta int32) (*Producer, error) {
	if m == nil {
		return nil, fmt.Errorf("add producer: nil map")
	}
	switch m.Type() {
	case ebpf.Hash, ebpf.LRUHash, ebpf.Array:
	default:
		return nil, fmt.Errorf("add producer: map type %s, want hash, LRU hash or array", m.Type())
	}
	if m.KeySize() != 4 {
		return nil, fmt.Errorf("add producer: key size %d, want 4", m.KeySize())
	}
	sz, err := bpfasm.AtomicSize(m.ValueSize())
	if err != nil {
		return nil, fmt.Errorf("add producer: %w", err)
	}
	return load("bpfchan_add", func(insns asm.Instructions) asm.Instructions {
		return append(insns,
			asm.Mov.Imm(asm.R1, int32(key)),
			asm.StoreMem(asm.RFP, -8, asm.R1, asm.Word),
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -8),
			asm.FnMapLookupElem.Call(),
			asm.JNE.Imm(asm.R0, 0, "add"),
			asm.Mov.Imm(asm.R1, 0),
			asm.StoreMem(asm.RFP, -16, asm.R1, asm.DWord),
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -8),
			asm.Mov.Reg(asm.R3, asm.RFP),
			asm.Add.Imm(asm.R3, -16),
			asm.Mov.Imm(asm.R4, 1), // BPF_NOEXIST: never clobber a concurrent creator
			asm.FnMapUpdateElem.Call(),
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -8),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "lost"),
			asm.Mov.Imm(asm.R1, delta).WithSymbol("add"),
			bpfasm.Add(asm.R0, asm.R1, sz, 0),
		)
	})
}
