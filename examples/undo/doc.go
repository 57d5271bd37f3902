// Command undo is clj-ebpf's Lab 15.3, "Undo/Redo System with Stack
// Channels", on real kernel maps: a text editor's undo and redo history kept
// in two BPF stack maps, and the document itself in a BPF hash map.
//
//	sudo go run ./examples/undo               # the lab's tests, demo and multi-level demo
//	sudo go run ./examples/undo demo          # one part: test, demo or multi
//	sudo go run ./examples/undo -wait 0 test  # undo/redo do not wait on an empty stack
//
// Every edit is an Op of 256 bytes (the lab's value size: kind, position,
// timestamp, text, replaced text). Executing an edit applies it to the
// document (a 1024-byte value read and written through a maps.Entry), pushes
// it on the undo stack and empties the redo stack; Undo pops the undo stack,
// applies the reverse edit and pushes the edit on the redo stack; Redo does
// the opposite. A full stack forgets its oldest edit (BPF_EXIST). Like the
// lab's deref with a 100 ms timeout, Undo and Redo wait up to -wait for an
// edit (maps.Stack.PopWait) before printing "Nothing to undo".
//
// The program plays the lab's three runs and checks the document after every
// step against the lab's asserts: its tests ("Test" … "Testing 123"),
// its demo ("Hello" → "Hello World!" → two undos → "Hello" → redo → "Hello
// World" → a new edit "Hello? World", which clears the redo history) with
// the status and history displays, and the multi-level demo ("ABCDE", undo
// 3 → "AB", redo 2 → "ABCD").
//
// # Why maps.Stack and not pump.StackChannel for the two stacks
//
// The lab uses clj-ebpf's stack-channel, whose deref pops only when called.
// A pump.StackChannel pops in its own goroutine, ahead of the receiver: it
// holds up to one popped value until someone receives it. For undo/redo that
// breaks LIFO: an edit pushed while the pump holds the previous top would
// be undone after it, and clearing the redo stack would miss the held value.
// Undo and redo pop on demand instead, with maps.Stack.Pop and PopWait in the
// caller's goroutine (see DESIGN.md, pump). The pumps are used where their
// order is exact, for values already in the stack: the history display (the
// lab's exercise 3) drains each stack through a pump.Stack source and pushes
// the edits back, oldest first, through a pump.StackWriter.
//
// # Goroutines, stopping, errors
//
// The program is sequential; the only goroutines are those of the history
// pumps, which it closes and waits for before going on. Exit codes: 0 when
// every step gave the lab's document, 1 when one did not or a map operation
// failed, 2 for bad arguments or when BPF is unavailable (one sentence on
// stderr says what is missing).
package main
