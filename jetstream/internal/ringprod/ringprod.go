// Package ringprod is the kernel-side producer of the jetstream module's
// tests and benchmarks: a BPF program, written with cilium/ebpf/asm, that
// writes one record into a ring buffer map per run (bpf_ringbuf_reserve,
// then submit), driven through BPF_PROG_TEST_RUN (Program.Run with Repeat),
// so nothing needs attaching. It is the core module's internal/producer cut
// down to what Forward's tests need (that package cannot be shared across
// modules).
//
// Records are numbered: the first 8 bytes of each carry the run's sequence
// number (native byte order, from 0), and every other 8-byte word of the
// record is zero. The program counts its runs in a state map and stops at a
// budget that Run raises by exactly n, since Program.Run may execute a
// program a little more often than Repeat asks; a run whose record does not
// fit (the ring is full) is counted as lost, and its sequence number is
// never written.
package ringprod

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// Producer is a loaded ring producer. It is safe for concurrent use; Run
// calls take turns.
type Producer struct {
	mu    sync.Mutex
	prog  *ebpf.Program
	state *ebpf.Map
}

// state is the value of the producer's one-entry state array.
type state struct {
	Seq   uint64 // runs that claimed a sequence number below Limit
	Limit uint64 // the budget: Run raises it by n
	Lost  uint64 // runs whose record did not fit
}

const (
	offSeq   = 0
	offLimit = 8
	offLost  = 16
)

// New loads a producer writing records of size bytes (a multiple of 8, at
// least 8) into rb, a ring buffer map.
func New(rb *ebpf.Map, size int) (*Producer, error) {
	if rb == nil || rb.Type() != ebpf.RingBuf {
		return nil, errors.New("ring producer: need a ring buffer map")
	}
	if size < 8 || size%8 != 0 {
		return nil, fmt.Errorf("ring producer: record size %d, want a multiple of 8, at least 8", size)
	}
	st, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       "ringprod_state",
		Type:       ebpf.Array,
		KeySize:    4,
		ValueSize:  uint32(binary.Size(state{})),
		MaxEntries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("ring producer: create state map: %w", err)
	}
	// Runs of one Program.Run execute one after the other on one CPU, and
	// Run calls are serialised, so plain loads and stores of the state are
	// enough (no atomics).
	insns := asm.Instructions{
		asm.Mov.Imm(asm.R1, 0),
		asm.StoreMem(asm.RFP, -4, asm.R1, asm.Word),
		asm.LoadMapPtr(asm.R1, st.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
		asm.Mov.Reg(asm.R6, asm.R0),
		asm.LoadMem(asm.R7, asm.R6, offSeq, asm.DWord),
		asm.LoadMem(asm.R8, asm.R6, offLimit, asm.DWord),
		asm.JGE.Reg(asm.R7, asm.R8, "exit"), // over budget
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R6, offSeq, asm.R1, asm.DWord),
		asm.LoadMapPtr(asm.R1, rb.FD()),
		asm.Mov.Imm(asm.R2, int32(size)),
		asm.Mov.Imm(asm.R3, 0),
		asm.FnRingbufReserve.Call(),
		asm.JEq.Imm(asm.R0, 0, "lost"),
		asm.StoreMem(asm.R0, 0, asm.R7, asm.DWord),
		asm.Mov.Imm(asm.R1, 0),
	}
	for off := 8; off < size; off += 8 {
		insns = append(insns, asm.StoreMem(asm.R0, int16(off), asm.R1, asm.DWord))
	}
	insns = append(insns,
		asm.Mov.Reg(asm.R1, asm.R0),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnRingbufSubmit.Call(),
		asm.Ja.Label("exit"),
		asm.LoadMem(asm.R1, asm.R6, offLost, asm.DWord).WithSymbol("lost"),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R6, offLost, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("exit"),
		asm.Return(),
	)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "ringprod",
		Type:         ebpf.SocketFilter,
		Instructions: insns,
		License:      "Dual MIT/GPL",
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("ring producer: load program: %w", err)
	}
	return &Producer{prog: prog, state: st}, nil
}

// Run produces exactly n records (written, or counted lost when the ring is
// full), then returns.
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
		return fmt.Errorf("ring producer: raise the budget: %w", err)
	}
	data := make([]byte, 14) // a socket filter's test input: one Ethernet header
	for remaining := uint64(n); remaining > 0; remaining = s.Limit - s.Seq {
		if _, err := p.prog.Run(&ebpf.RunOptions{Data: data, Repeat: uint32(min(remaining, 1<<31))}); err != nil {
			return fmt.Errorf("ring producer: run: %w", err)
		}
		if s, err = p.read(); err != nil {
			return err
		}
	}
	return nil
}

// Counts returns how many records the producer attempted so far (written
// plus lost) and how many of them were lost.
func (p *Producer) Counts() (attempted, lost uint64, err error) {
	s, err := p.read()
	return s.Seq, s.Lost, err
}

func (p *Producer) read() (state, error) {
	var s state
	if err := p.state.Lookup(uint32(0), &s); err != nil {
		return s, fmt.Errorf("ring producer: read state: %w", err)
	}
	return s, nil
}

// Close unloads the program and its state map.
func (p *Producer) Close() error {
	return errors.Join(p.prog.Close(), p.state.Close())
}
