package producer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/bpfchan/bpfchan/internal/bpfasm"
)

// Producer is a loaded BPF program that produces one item per run, within a
// budget. It is safe for concurrent use; Run calls are serialised.
type Producer struct {
	mu    sync.Mutex
	prog  *ebpf.Program
	state *ebpf.Map
}

// state is the value of the producer's one-entry state array.
type state struct {
	Seq   uint64 // runs that claimed a sequence number below Limit
	Limit uint64 // the budget: Run raises it by n
	Lost  uint64 // runs whose output did not fit
}

const (
	offSeq   = 0
	offLimit = 8
	offLost  = 16
)

// Option changes how a producer writes.
type Option func(*options)

type options struct {
	flags   int64
	discard bool
}

// NoWakeup makes a ring producer submit with BPF_RB_NO_WAKEUP, so readers
// are not notified and must find the records by draining.
func NoWakeup() Option { return func(o *options) { o.flags = 1 } }

// Discard makes a ring producer reserve each record, fill it and then
// discard it (bpf_ringbuf_discard) instead of submitting it: the record
// takes its place in the ring, and a reader must skip it.
func Discard() Option { return func(o *options) { o.discard = true } }

// Overwrite makes a push producer use BPF_EXIST: a full queue or stack
// evicts its oldest value instead of refusing the push.
func Overwrite() Option { return func(o *options) { o.flags = 2 } }

// body emits the instructions that produce one item. On entry r7 holds the
// sequence number and r9 the program's context; on failure it jumps to
// "lost"; on success it falls through or jumps to "exit".
type body func(asm.Instructions) asm.Instructions

func load(name string, b body) (*Producer, error) {
	st, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       "bpfchan_pstate",
		Type:       ebpf.Array,
		KeySize:    4,
		ValueSize:  uint32(binary.Size(state{})),
		MaxEntries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("create producer state map: %w", err)
	}
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R9, asm.R1),
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, st.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
		asm.Mov.Reg(asm.R6, asm.R0),
		asm.Mov.Imm(asm.R7, 1),
		bpfasm.FetchAdd(asm.R6, asm.R7, asm.DWord, offSeq),
		asm.LoadMem(asm.R8, asm.R6, offLimit, asm.DWord),
		asm.JLT.Reg(asm.R7, asm.R8, "produce"),
		// Over budget: give the number back so Seq settles at Limit.
		asm.Mov.Imm(asm.R1, -1),
		bpfasm.Add(asm.R6, asm.R1, asm.DWord, offSeq),
		asm.Ja.Label("exit"),
	}
	insns = b(append(insns, asm.Mov.Reg(asm.R7, asm.R7).WithSymbol("produce")))
	insns = append(insns,
		asm.Ja.Label("exit"),
		asm.Mov.Imm(asm.R1, 1).WithSymbol("lost"),
		bpfasm.Add(asm.R6, asm.R1, asm.DWord, offLost),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("exit"),
		asm.Return(),
	)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         name,
		Type:         ebpf.SocketFilter,
		Instructions: insns,
		License:      "Dual MIT/GPL",
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("load producer %s: %w", name, err)
	}
	return &Producer{prog: prog, state: st}, nil
}

// fill emits stores of the sequence number (r7) at base+off and zeros after
// it, covering size bytes. Stores are as wide as the remaining size allows.
func fill(insns asm.Instructions, base asm.Register, off int16, size int) asm.Instructions {
	insns = append(insns, asm.Mov.Imm(asm.R1, 0))
	for at, sz := range bpfasm.Pieces(size) {
		src := asm.R1
		if at == 0 {
			src = asm.R7
		}
		insns = append(insns, asm.StoreMem(base, off+at, src, sz))
	}
	return insns
}

// Run produces exactly n items (records written or counted as lost), then
// returns. Concurrent Run calls take turns.
func (p *Producer) Run(n int) error {
	if n <= 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s, err := p.read()
	if err != nil {
		return err
	}
	s.Limit += uint64(n)
	if err := p.state.Put(uint32(0), s); err != nil {
		return fmt.Errorf("raise producer budget: %w", err)
	}
	data := make([]byte, 14) // a socket filter's test input: one Ethernet header
	for remaining := uint64(n); remaining > 0; {
		if _, err := p.prog.Run(&ebpf.RunOptions{Data: data, Repeat: uint32(min(remaining, 1<<31))}); err != nil {
			return fmt.Errorf("run producer: %w", err)
		}
		if s, err = p.read(); err != nil {
			return err
		}
		remaining = s.Limit - s.Seq
	}
	return nil
}

// Counts returns how many items the producer has attempted so far (produced
// plus lost) and how many of them were lost.
func (p *Producer) Counts() (attempted, lost uint64, err error) {
	s, err := p.read()
	return s.Seq, s.Lost, err
}

func (p *Producer) read() (state, error) {
	var s state
	if err := p.state.Lookup(uint32(0), &s); err != nil {
		return s, fmt.Errorf("read producer state: %w", err)
	}
	return s, nil
}

// Program returns the loaded program, for benchmarks that drive it directly.
func (p *Producer) Program() *ebpf.Program { return p.prog }

// Close unloads the program and its state map.
func (p *Producer) Close() error {
	return errors.Join(p.prog.Close(), p.state.Close())
}
