// Package pipeline composes channels into stages that one [Group] owns. It
// knows nothing about BPF: pumps and watchers plug in through
// chans.Receiver ([From]) and chans.Sender ([To]), and any other channel or
// iter.Seq ([FromSeq]) works the same way.
//
//	g, ctx := pipeline.New(ctx)
//	events := pipeline.From(g, src)                  // a ring-buffer pump
//	parsed := pipeline.Map(g, events, parse, pipeline.Workers(4), pipeline.Ordered())
//	wanted := pipeline.Filter(g, parsed, important)
//	pipeline.ForEach(g, pipeline.Batch(g, wanted, 256, time.Millisecond), store)
//	...
//	g.Stop()        // or cancel ctx to abort
//	err := g.Wait()
//
// # Ownership
//
// Every stage runs in goroutines the Group owns, as does every function
// started with [Group.Go]; they are an errgroup.Group's goroutines.
// [Group.Wait] returns only once every goroutine and every user callback has
// returned, and [Group.Done] is closed at that point. A stage closes each
// channel it returns after its last send, so `for v := range out` always
// ends; it never closes a channel it was given, except a Sender's C() in
// [To], as the Sender contract asks. Every send of a stage selects on the
// group's context, and so does every receive from a channel the group did
// not make; a worker checks the context before taking new work.
//
// Pumps and watchers need no Group to be owned: each one's Wait is an
// errgroup function (eg.Go(src.Wait)), and the context of
// errgroup.WithContext, given to their constructors, aborts them at the
// first error. A Group adds what errgroup does not: stages, a graceful Stop,
// and per-stage errors and counters.
//
// # Stopping
//
// There are two ways to end a pipeline whose sources never end on their own,
// as BPF event sources do not.
//
// [Group.Stop] is graceful. Sources adopted with From are closed, so they
// deliver what the kernel buffer already holds; FromSeq sources stop taking
// values. Every stage then drains its input, passes on what it holds
// (including a partial batch) and closes its outputs; Wait returns nil.
// Nothing in flight is lost, and nothing keeps reading a source that has
// been told to stop: a Stop ends because the sources end.
//
// Cancelling the parent context, a stage failing, or a consumer breaking out
// of [All] aborts: the group's context is cancelled, every stage returns at
// its next send, receive or value, and what is in flight (a value in hand, a
// partial batch, what sits in the channels between stages) is discarded.
// Adopted sources are still Closed, and what they deliver while closing is
// discarded, so their goroutines exit.
//
// On Ctrl-C, choose between the two. For a graceful stop, which still
// processes what the kernel holds when the signal comes, have the signal
// call [Group.Stop]:
//
//	sigCtx, cancel := signal.NotifyContext(ctx, os.Interrupt)
//	defer cancel()
//	g, ctx := pipeline.New(ctx)
//	defer context.AfterFunc(sigCtx, g.Stop)()
//
// To stop at once and lose what is buffered (in the kernel and between
// stages), give the signal's context to New instead: pipeline.New(sigCtx).
// Wait then returns that context's cause. A graceful stop takes as long as
// the stages need to process what the sources still deliver; a program that
// must also end within a bound cancels the context it gave New after it.
//
// Stop reaches only the sources the group knows: those adopted with From
// and those built with FromSeq. It does not cancel the context, so a
// function started with [Group.Go] that ends only when the context is done
// (an errgroup-style poller or ticker) keeps running after a Stop, and so
// does a stage fed a channel of the caller's (Map(g, src.C(), …) instead of
// Map(g, From(g, src), …)), which waits for that channel to close. Such a
// function or feeder watches [Group.Stopping] as well and, when it is
// closed, finishes and closes the channels it made; otherwise Wait does not
// return after Stop. (Cancelling the context once every stage has drained
// would end the first kind, but could also cut off a Go function still
// consuming a stage's output, which is worse.)
//
// # Errors
//
// The first error returned by a callback, a function started with Go, or an
// adopted source or sink aborts the group and is what Wait returns, as a
// [*StageError] that names the stage and unwraps to the error; it is also
// the cause of the group's context. Errors that stages return after the
// abort began are its consequences and are not reported. A sink that stops
// by itself with no error while [To] still has values for it fails the stage
// with [ErrSinkStopped]. If the parent context was cancelled, Wait returns
// its context.Cause. Wait never returns a context.Canceled that the group
// caused itself: after a clean end, a Stop or a break out of All it returns
// nil.
//
// # Panics
//
// Misuse is a programmer error and panics when the stage is built, with a
// "pipeline: " prefix: a nil function, group or input channel, n < 1, an
// option a stage does not take, or one it cannot honour, such as
// Overflow(chans.DropOldest) on an output with no buffer. An option means
// what it means in package pump: where pump.WithOverflow refuses a
// combination with an error, the stage refuses it with a panic; a maxAge of
// 0 is "no age flush" in [Batch] as in pump.WithBatch.
//
// A panic in a callback is not recovered, as errgroup does not recover one
// either. Recovering would turn a bug into an ordinary error while the state
// the callback shares with the rest of the program is half updated, and the
// other stages would go on (or shut down) on top of it; the process crashing
// with the callback's stack is the honest outcome. A callback that can
// legitimately panic (a parser of untrusted input, say) recovers inside
// itself and returns an error, which aborts the group like any other.
//
// # Order and parallelism
//
// A stage has one worker by default: it keeps order and never runs its
// callback concurrently. [Workers](n) runs n; results then leave in
// completion order unless [Ordered] is given, which keeps input order at the
// cost of up to 2n values in flight. [Tee] keeps order on each branch;
// [Shard] sends every value with the same key to the same output, in order.
//
// # Back-pressure and drops
//
// By default a stage waits for its consumer. [Overflow] with a drop policy
// (chans.DropNewest, chans.DropOldest, applied by chans.Offer as in the
// pumps) drops instead and counts the drops; [Buffer] sizes the output
// channel. On a Tee, per-branch settings ([Branch]) let one slow branch drop
// while the others keep flowing.
//
// # Costs
//
// Each stage costs its goroutines (one per worker; an Ordered stage adds a
// dispatcher and a collector; [From] adds three that wait on the adopted
// source) and one channel operation per value per hop. A receive from
// another stage of the same group is a plain receive, not a select: that
// stage closes its output as soon as it sees an abort. Callbacks are timed
// for [StageStats].Busy by sampling, so a fast callback does not pay for a
// clock reading per value. Building stages, Stats and Done take the group's
// mutex; sends and receives do not.
//
// # Metrics
//
// [Group.Stats] reads each stage's counters at run time: values in, out and
// dropped, what sits in its output buffers, and the time spent in user
// callbacks, which shows where a pipeline is slow.
package pipeline
