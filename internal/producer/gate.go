package producer

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// Gate is a ring producer that keeps its record reserved until told: each
// run reserves an 8-byte record, writes a value into it, then reads a word
// of user memory that is not there yet, and submits the record once the
// read returns. The memory is registered with userfaultfd, so the read
// sleeps in the page fault, holding no CPU, until Open supplies the page
// or Close closes the userfaultfd (the fault is then resolved with a zero
// page). It is for tests of a reader that meets a record reserved but not
// yet committed.
//
// The run's thread blocks every signal: a signal wakes a task waiting in a
// kernel-mode fault on a userfaultfd page, and as the fault only gives up
// for a fatal signal, the task would then spin in the kernel until the
// page comes.
//
// The program is a sleepable BPF_PROG_TYPE_SYSCALL program (reading user
// memory may sleep only there); the kernel must let it fault on memory a
// userfaultfd handles (CAP_SYS_PTRACE, or vm.unprivileged_userfaultfd).
type Gate struct {
	prog *ebpf.Program
	flag *ebpf.Map // gateState
	uffd int
	page []byte // registered with uffd; missing until Open

	mu     sync.Mutex
	run    *gateRun // the last run started, until Wait took its result
	closed bool
}

type gateState struct {
	Reserved uint32 // set by the program once it holds its record
	_        uint32
}

// NewRingGate loads a Gate writing into the ring buffer rb; value is what
// its records hold (a native-endian uint64).
func NewRingGate(rb *ebpf.Map, value uint64) (_ *Gate, err error) {
	if rb == nil || rb.Type() != ebpf.RingBuf {
		return nil, fmt.Errorf("ring gate: need a ring buffer map")
	}
	g := &Gate{uffd: -1}
	defer func() {
		if err != nil {
			g.release()
		}
	}()
	if err := g.openFault(); err != nil {
		return nil, fmt.Errorf("ring gate: %w", err)
	}
	if g.flag, err = ebpf.NewMap(&ebpf.MapSpec{
		Name:       "bpfchan_gate",
		Type:       ebpf.Array,
		KeySize:    4,
		ValueSize:  8,
		MaxEntries: 1,
	}); err != nil {
		return nil, fmt.Errorf("create gate map: %w", err)
	}
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // ctx: the address to read
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, g.flag.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
		asm.Mov.Reg(asm.R8, asm.R0),
		asm.LoadMapPtr(asm.R1, rb.FD()),
		asm.Mov.Imm(asm.R2, 8),
		asm.Mov.Imm(asm.R3, 0),
		asm.FnRingbufReserve.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
		asm.Mov.Reg(asm.R7, asm.R0),
		asm.LoadImm(asm.R1, int64(value), asm.DWord),
		asm.StoreMem(asm.R7, 0, asm.R1, asm.DWord),
		asm.StoreImm(asm.R8, 0, 1, asm.Word), // Reserved
	}
	insns = append(insns,
		asm.Mov.Reg(asm.R1, asm.RFP),
		asm.Add.Imm(asm.R1, -16),
		asm.Mov.Imm(asm.R2, 8),
		asm.LoadMem(asm.R3, asm.R6, 0, asm.DWord),
		asm.FnCopyFromUser.Call(), // sleeps in the fault
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnRingbufSubmit.Call(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("exit"),
		asm.Return(),
	)
	if g.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "bpfchan_gate",
		Type:         ebpf.Syscall,
		Flags:        unix.BPF_F_SLEEPABLE,
		Instructions: insns,
		License:      "Dual MIT/GPL",
	}); err != nil {
		return nil, fmt.Errorf("load ring gate: %w", err)
	}
	return g, nil
}

// userfaultfd(2) and its ioctls (linux/userfaultfd.h; x/sys has none).
const (
	uffdAPI        = 0xAA
	uffdioAPI      = 0xC018AA3F // _IOWR(0xAA, 0x3F, struct uffdio_api)
	uffdioRegister = 0xC020AA00 // _IOWR(0xAA, 0x00, struct uffdio_register)
	uffdioZeropage = 0xC020AA04 // _IOWR(0xAA, 0x04, struct uffdio_zeropage)
	uffdRegMissing = 1
)

// The ioctl numbers encode these sizes.
var (
	_ [24 - unsafe.Sizeof(uffdioAPIArg{})]byte
	_ [unsafe.Sizeof(uffdioAPIArg{}) - 24]byte
	_ [32 - unsafe.Sizeof(uffdioRegisterArg{})]byte
	_ [unsafe.Sizeof(uffdioRegisterArg{}) - 32]byte
	_ [32 - unsafe.Sizeof(uffdioZeropageArg{})]byte
	_ [unsafe.Sizeof(uffdioZeropageArg{}) - 32]byte
)

type uffdioAPIArg struct{ API, Features, Ioctls uint64 }

type uffdioRegisterArg struct {
	Start, Len, Mode, Ioctls uint64
}

type uffdioZeropageArg struct {
	Start, Len, Mode uint64
	Zeropage         int64
}

func (g *Gate) openFault() error {
	fd, _, e := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|unix.O_NONBLOCK, 0, 0)
	if e != 0 {
		return fmt.Errorf("userfaultfd for kernel-mode faults (needs root, CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1): %w", e)
	}
	g.uffd = int(fd)
	api := uffdioAPIArg{API: uffdAPI}
	if err := g.ioctl(uffdioAPI, unsafe.Pointer(&api)); err != nil {
		return fmt.Errorf("UFFDIO_API: %w", err)
	}
	page, err := unix.Mmap(-1, 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("mmap gate page: %w", err)
	}
	g.page = page
	reg := uffdioRegisterArg{Start: g.addr(), Len: uint64(len(page)), Mode: uffdRegMissing}
	if err := g.ioctl(uffdioRegister, unsafe.Pointer(&reg)); err != nil {
		return fmt.Errorf("UFFDIO_REGISTER: %w", err)
	}
	return nil
}

func (g *Gate) addr() uint64 { return uint64(uintptr(unsafe.Pointer(&g.page[0]))) }

func (g *Gate) ioctl(req uintptr, arg unsafe.Pointer) error {
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(g.uffd), req, uintptr(arg)); e != 0 {
		return e
	}
	return nil
}

// Start resets the gate and runs the program once, in a goroutine of the
// gate's: the run ends after its record was submitted (once Open or Close
// was called), or when the ring had no room for it. Wait returns its
// result. One run at a time.
func (g *Gate) Start() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.closed:
		return errors.New("start gate: closed")
	case g.run != nil:
		return errors.New("start gate: the last run was not waited for")
	}
	if err := g.flag.Put(uint32(0), gateState{}); err != nil {
		return fmt.Errorf("reset gate: %w", err)
	}
	// The page goes missing again, so the program's read waits.
	if err := unix.Madvise(g.page, unix.MADV_DONTNEED); err != nil {
		return fmt.Errorf("reset gate: %w", err)
	}
	r := &gateRun{ended: make(chan struct{})}
	g.run = r
	go func() {
		defer close(r.ended)
		// The thread is ours until the goroutine ends, then the runtime
		// discards it: its signal mask goes with it.
		runtime.LockOSThread()
		all := unix.Sigset_t{}
		for i := range all.Val {
			all.Val[i] = ^all.Val[i]
		}
		if err := unix.PthreadSigmask(unix.SIG_BLOCK, &all, nil); err != nil {
			r.err = fmt.Errorf("run gate: block signals: %w", err)
			return
		}
		r.tid.Store(int32(unix.Gettid()))
		if _, err := g.prog.Run(&ebpf.RunOptions{Context: g.addr()}); err != nil {
			r.err = fmt.Errorf("run gate: %w", err)
		}
	}()
	return nil
}

type gateRun struct {
	ended chan struct{}
	tid   atomic.Int32 // the thread running the program
	err   error        // set before ended is closed
}

// Waiting reports whether the run Start started holds its record reserved
// and sleeps in the page fault: the program has reserved the record, and
// its thread, still in the bpf(2) call, is asleep.
func (g *Gate) Waiting() (bool, error) {
	g.mu.Lock()
	r := g.run
	g.mu.Unlock()
	if r == nil || r.tid.Load() == 0 {
		return false, nil
	}
	var s gateState
	if err := g.flag.Lookup(uint32(0), &s); err != nil {
		return false, fmt.Errorf("read gate: %w", err)
	}
	if s.Reserved == 0 {
		return false, nil
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/stat", r.tid.Load()))
	if err != nil {
		return false, nil // the run has ended
	}
	// "tid (comm) S ...": the state follows the last parenthesis.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return false, fmt.Errorf("read gate thread state: %q", stat)
	}
	state := stat[i+2]
	return state == 'S' || state == 'D', nil
}

// Wait waits for the run Start started and returns its error.
func (g *Gate) Wait() error {
	g.mu.Lock()
	r := g.run
	g.mu.Unlock()
	if r == nil {
		return errors.New("wait for gate: no run started")
	}
	<-r.ended
	g.mu.Lock()
	if g.run == r {
		g.run = nil
	}
	g.mu.Unlock()
	return r.err
}

// Ended reports, without waiting, whether the run Start started has ended
// (its result is for Wait; once Wait has taken it, Ended is false).
func (g *Gate) Ended() bool {
	g.mu.Lock()
	r := g.run
	g.mu.Unlock()
	if r == nil {
		return false
	}
	select {
	case <-r.ended:
		return true
	default:
		return false
	}
}

// AwaitWaiting returns once Waiting reports true, yielding the processor
// between looks, or with an error if the run ended first.
func (g *Gate) AwaitWaiting() error {
	for {
		ok, err := g.Waiting()
		switch {
		case err != nil:
			return err
		case ok:
			return nil
		case g.Ended():
			return fmt.Errorf("gate run ended before it waited: %v", g.Wait())
		}
		runtime.Gosched()
	}
}

// Open lets the current run submit its record: it supplies the page the
// run waits for.
func (g *Gate) Open() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errors.New("open gate: closed")
	}
	zp := uffdioZeropageArg{Start: g.addr(), Len: uint64(len(g.page))}
	if err := g.ioctl(uffdioZeropage, unsafe.Pointer(&zp)); err != nil && err != unix.EEXIST {
		return fmt.Errorf("open gate: UFFDIO_ZEROPAGE: %w", err)
	}
	return nil
}

// Close lets a run in progress finish (closing the userfaultfd ends its
// wait), waits for it, and unloads the program and frees its memory.
func (g *Gate) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	err := unix.Close(g.uffd)
	g.uffd = -1
	r := g.run
	g.mu.Unlock()
	if r != nil {
		<-r.ended
	}
	return errors.Join(err, g.release())
}

// release frees what is left after the userfaultfd is closed.
func (g *Gate) release() error {
	var errs []error
	if g.uffd >= 0 {
		errs = append(errs, unix.Close(g.uffd))
		g.uffd = -1
	}
	if g.prog != nil {
		errs = append(errs, g.prog.Close())
	}
	if g.flag != nil {
		errs = append(errs, g.flag.Close())
	}
	if g.page != nil {
		errs = append(errs, unix.Munmap(g.page))
	}
	return errors.Join(errs...)
}
