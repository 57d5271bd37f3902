package main

import (
	"bytes"
	"fmt"
)

// RawEvent is one ring-buffer record as the BPF producer writes it: 16 bytes,
// the run's sequence number first (internal/producer.NewRing).
type RawEvent struct {
	Seq      uint64
	Reserved uint64
}

// The lab's event types and their categories.
var categories = [...]string{1: "syscall", 2: "network", 3: "filesystem", 4: "process"}

// Event is a raw event with the fields the lab's BPF program would report.
// The test producer writes only a sequence number, so the event type and
// the pid are derived from it (a fixed hash): the mix of types and pids is
// the same on every run, which lets the test predict the figures.
type Event struct {
	Seq      uint64
	Type     uint32 // 1 to 4
	PID      uint32 // 1 to 1200
	Priority uint32 // 1 (process), 2 (network), 3 (the others)
}

func parse(r RawEvent) Event {
	h := mix(r.Seq)
	e := Event{Seq: r.Seq, Type: 1 + uint32(h>>62), PID: 1 + uint32((h>>32)%1200)}
	switch e.Type {
	case 4:
		e.Priority = 1
	case 2:
		e.Priority = 2
	default:
		e.Priority = 3
	}
	return e
}

// mix is splitmix64's finalizer: consecutive numbers give unrelated bits.
func mix(z uint64) uint64 {
	z += 0x9E3779B97F4A7C15
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return z ^ z>>31
}

// discard is the lab's should-filter?: low-priority events of system
// processes (pid under 100) are dropped by stage 1.
func (e Event) discard() bool { return e.Priority == 3 && e.PID < 100 }

func (e Event) category() string { return categories[e.Type] }

// Filtered is what stage 1 pushes into the first BPF queue: 128 bytes, the
// lab's value size, laid out without padding.
type Filtered struct {
	Seq      uint64
	Type     uint32
	PID      uint32
	Priority uint32
	Category [32]byte
	Reserved [76]byte
}

func filtered(e Event) Filtered {
	f := Filtered{Seq: e.Seq, Type: e.Type, PID: e.PID, Priority: e.Priority}
	copy(f.Category[:], e.category())
	return f
}

// Enriched is what stage 2 pushes into the second BPF queue: 256 bytes, the
// lab's value size.
type Enriched struct {
	Seq         uint64
	Type        uint32
	PID         uint32
	Priority    uint32
	Worker      uint32 // the stage 2 worker that enriched it
	Category    [32]byte
	ProcessName [64]byte
	EnrichedAt  int64 // Unix nanoseconds
	Data        [128]byte
}

// processNames is the lab's simulated process table.
var processNames = map[uint32]string{
	1: "init", 2: "kthreadd", 500: "systemd", 1000: "myapp", 1001: "worker", 1234: "nginx", 5678: "postgres",
}

func processName(pid uint32) string {
	if n, ok := processNames[pid]; ok {
		return n
	}
	return fmt.Sprintf("process-%d", pid)
}

func enrich(f Filtered, worker int, now int64) Enriched {
	e := Enriched{Seq: f.Seq, Type: f.Type, PID: f.PID, Priority: f.Priority, Worker: uint32(worker),
		Category: f.Category, EnrichedAt: now}
	copy(e.ProcessName[:], processName(f.PID))
	copy(e.Data[:], fmt.Sprintf("Enriched: %s by worker %d", cstring(f.Category[:]), worker))
	return e
}

// cstring returns b up to its first NUL.
func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// statKey is a key of the stats map: a name of up to 32 bytes (the lab's key
// size), NUL-padded.
type statKey [32]byte

func key(name string) statKey {
	var k statKey
	copy(k[:], name)
	return k
}
