package backoff_test

import (
	"fmt"
	"time"

	"github.com/bpfchan/bpfchan/internal/backoff"
)

func ExampleBackoff() {
	b := backoff.Backoff{Min: 50 * time.Microsecond, Max: 200 * time.Microsecond}
	fmt.Println(b.Next(), b.Next(), b.Next(), b.Next())
	b.Reset() // found work
	fmt.Println(b.Next())
	// Output:
	// 50µs 100µs 200µs 200µs
	// 50µs
}
