// Package bpfcall is the one place in bpfchan that calls bpf(2) directly,
// for the operations where cilium/ebpf's wrappers cost more than the
// syscall (marshalling, an error allocated per empty pop or per end of a
// batch sweep, Program.Run's five allocations) or that it lacks.
//
// Each function takes a file descriptor and byte slices, makes one call and
// returns the kernel's answer as a unix.Errno, 0 on success; callers wrap
// it and name the map. An empty slice is passed as NULL (queues and stacks
// take a NULL key). Every buffer the kernel writes must be at least the
// size the kernel writes into it (the map's key or value size, count
// entries for a batch): the kernel does not know the slice's length.
//
// The attributes follow the kernel's union bpf_attr with every address in
// a uint64 (its __aligned_u64), so one layout serves 32- and 64-bit
// GOARCHes; compile-time checks pin each size and the offsets that differ
// between layouts, and a test checks them against the running kernel.
//
// No call allocates. The attribute is a local variable of the function
// that makes the syscall: its address reaches unix.Syscall, an assembly
// function whose uintptr arguments the compiler keeps alive for the call
// without moving what they point at to the heap (go build -gcflags=-m: no
// "moved to heap" for any attribute; TestNoAllocs holds it). A goroutine's
// stack is not moved while it is in a syscall, and no call that could grow
// it is left between taking the addresses and making the syscall, so a
// buffer may be on the caller's stack or on the heap; runtime.KeepAlive
// holds it until the kernel has answered.
//
// Calls go through unix.Syscall, so a call the kernel makes wait releases
// the goroutine's P. [PopRaw] and [PeekRaw] are the exceptions (a pop by
// a pump, a peek by the waiting goroutine at every idle poller's map: the
// call is the whole cost there); their documentation says why that is safe.
package bpfcall
