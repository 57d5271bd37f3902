package netpoll_test

import (
	"fmt"
	"os"

	"github.com/bpfchan/bpfchan/internal/netpoll"
)

func ExampleNew() {
	r, w, _ := os.Pipe()
	defer r.Close()
	defer w.Close()
	wt, err := netpoll.New(int(r.Fd()), "pipe")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer wt.Close()
	w.Write([]byte("x"))
	ok, err := wt.Wait(func() bool { return true }, 0) // parks in the netpoller until ready
	fmt.Println(ok, err)
	// Output: true <nil>
}
