package chans_test

import (
	"context"
	"fmt"
	"time"

	"github.com/bpfchan/bpfchan/chans"
)

func ExampleRecv() {
	ch := make(chan string, 1)
	ch <- "hello"
	v, ok, err := chans.Recv(context.Background(), ch)
	fmt.Println(v, ok, err)
	close(ch)
	_, ok, err = chans.Recv(context.Background(), ch)
	fmt.Println(ok, err)
	// Output:
	// hello true <nil>
	// false <nil>
}

func ExampleRecvTimeout() {
	ch := make(chan int)
	_, _, err := chans.RecvTimeout(ch, 10*time.Millisecond)
	fmt.Println(err)
	// Output: chans: receive timed out
}

func ExampleSend() {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan int, 1)
	fmt.Println(chans.Send(ctx, ch, 1))
	cancel(fmt.Errorf("shutting down"))
	fmt.Println(chans.Send(ctx, ch, 2)) // full, and ctx is done
	// Output:
	// <nil>
	// shutting down
}

func ExampleAll() {
	ch := make(chan int, 3)
	ch <- 1
	ch <- 2
	ch <- 3
	close(ch)
	sum := 0
	for v := range chans.All(context.Background(), ch) {
		sum += v
	}
	fmt.Println(sum)
	// Output: 6
}

func ExampleUntil() {
	ch := make(chan int, 2)
	ch <- 1
	ch <- 2
	// No close: the loop ends once 20 ms pass with no value.
	for v := range chans.Until(ch, 20*time.Millisecond) {
		fmt.Println(v)
	}
	// Output:
	// 1
	// 2
}

func ExampleOffer() {
	ch := make(chan int, 2)
	for i := range 4 {
		dropped, _ := chans.Offer(context.Background(), ch, i, chans.DropOldest)
		fmt.Println(i, dropped)
	}
	close(ch)
	for v := range ch {
		fmt.Print(v, " ")
	}
	fmt.Println()
	// Output:
	// 0 false
	// 1 false
	// 2 true
	// 3 true
	// 2 3
}
