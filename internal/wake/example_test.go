package wake_test

import (
	"fmt"

	"github.com/bpfchan/bpfchan/internal/wake"
)

func ExampleRegister() {
	poller := wake.Register(42, wake.Pushed) // map ID 42
	defer poller.Release()
	writer := wake.Register(42, wake.Pushed)
	defer writer.Release()

	armed := poller.Armed() // before looking at the map
	writer.Notify()         // after a push
	<-armed
	fmt.Println("woken")
	// Output: woken
}
