package pump_test

import (
	"context"
	"fmt"
	"log"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/producer"
	"github.com/bpfchan/bpfchan/pump"
)

// command is what the example sends into the kernel: its first 8 bytes
// are the sequence number the example's BPF program checks.
type command struct {
	Seq uint64
	Op  uint32
	Arg uint32
}

func ExampleUserRingBuf() {
	urb := mustMap(&ebpf.MapSpec{Type: ebpf.UserRingbuf, MaxEntries: 1 << 16})
	defer urb.Close()
	cmds, err := pump.UserRingBuf[command](context.Background(), urb)
	if err != nil {
		log.Fatal(err)
	}
	for i := range uint64(3) {
		cmds.C() <- command{Seq: i, Op: 1, Arg: uint32(10 * i)}
	}
	close(cmds.C()) // no more: the pump commits what it received, then stops
	check(cmds.Wait())
	fmt.Println("committed", cmds.Stats().Delivered, "commands")

	// A BPF program calling bpf_user_ringbuf_drain takes the records.
	drain := must(producer.NewUserRingDrain(urb))
	defer drain.Close()
	check(drain.Run(1))
	seen := must(drain.Stats())
	fmt.Println("drained", seen.Records, "records, in order:", seen.Disorder == 0)
	// Output:
	// committed 3 commands
	// drained 3 records, in order: true
}
