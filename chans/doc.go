// Package chans holds the endpoint contracts every bpfchan pump, watcher and
// pipeline stage implements, and small context-aware helpers for channels.
//
// A [Receiver] is the consuming end of something that produces values in its
// own goroutine: a ring-buffer pump, a queue poller, a map watcher. Its C() is
// closed when that goroutine stops, so `for v := range r.C()` always ends.
// Wait blocks until the goroutine has exited and returns the error that
// stopped it (nil after Close, context.Cause(ctx) after the context was
// cancelled). Close is the graceful stop: what the producer already holds is
// delivered, then it exits.
//
// A [Sender] is the feeding end of something that consumes values in its own
// goroutine, such as a queue writer. The caller sends on C() and closes it to
// say "no more"; the consumer then finishes every value it received before
// Wait returns. C() is the one channel a caller closes.
//
// The helpers ([Recv], [RecvTimeout], [Send], [All], [Until]) never start a
// goroutine. Recv, Send and All take a ctx first and stop when it is done
// (Recv and Send reporting context.Cause(ctx)); RecvTimeout and Until take
// no ctx and are bounded by their timeout instead: RecvTimeout returns
// ErrTimeout, Until ends when no value came for its idle time.
//
// [Policy] names what a producer does when its output channel is full.
package chans
