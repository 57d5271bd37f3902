package pipeline

import (
	"context"
	"errors"
	"sync"

	"golang.org/x/sync/errgroup"
)

var (
	// ErrSinkStopped is the error of a [To] stage whose Sender stopped by
	// itself, with no error, while values were still coming: they could not
	// be delivered.
	ErrSinkStopped = errors.New("sink stopped before its input ended")

	// Causes the group cancels its own context with. Wait maps both to nil:
	// they mark a pipeline that ended the way its owner asked, not a failure.
	errFinished = errors.New("pipeline: group finished")
	errBroken   = errors.New("pipeline: consumer stopped iterating")
)

// StageError is the error Wait returns when a stage failed: a callback
// returned an error, an adopted source or sink stopped with one, or a
// function started with [Group.Go] returned one.
type StageError struct {
	Stage string // the stage's name (see [Name]) or the name given to Go
	Err   error  // what the stage returned
}

func (e *StageError) Error() string { return "pipeline: stage " + e.Stage + ": " + e.Err.Error() }

// Unwrap returns the stage's error.
func (e *StageError) Unwrap() error { return e.Err }

// A Group owns the goroutines of a pipeline: every stage built on it and every
// function started with Go. Build one with [New]; the zero value is not usable.
//
// The first failure cancels the group's context, which aborts every stage;
// [Group.Stop] ends the pipeline gracefully instead. [Group.Wait] returns once
// every goroutine has exited.
type Group struct {
	parent context.Context
	ctx    context.Context
	cancel context.CancelCauseFunc

	// The goroutines and the first error are eg's. The group cancels its
	// context itself, with the failure as the cause, before the failing
	// goroutine closes the channels it made (errgroup.WithContext would
	// cancel only once the goroutine has returned, so a stage downstream
	// could take the closed channel for the input's end and flush what it
	// holds), and with causes of its own: a consumer breaking out of All.
	eg errgroup.Group

	stopOnce sync.Once
	stopping chan struct{}
	waitOnce sync.Once
	err      error // Wait's result

	mu      sync.Mutex
	running int           // goroutines started and not yet returned
	done    chan struct{} // closed while running is 0
	stages  []*stage
	built   int              // stages built, From included: the default names' numbers
	outputs map[any]struct{} // every channel a stage of the group returned
}

// closedDone is the channel Done returns while no goroutine runs.
var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// New returns a Group and the context its stages run with, derived from ctx.
// That context is cancelled when a stage fails, when ctx is cancelled, or
// when Wait returns.
func New(ctx context.Context) (*Group, context.Context) {
	if ctx == nil {
		panic("pipeline: New with a nil context")
	}
	gctx, cancel := context.WithCancelCause(ctx)
	g := &Group{parent: ctx, ctx: gctx, cancel: cancel, stopping: make(chan struct{}), done: closedDone}
	return g, gctx
}

// Go runs f in a goroutine owned by the group, with the group's context. A
// non-nil error from f aborts the group and is returned by Wait as a
// *StageError naming name, unless the group was already aborting: an error
// that follows an abort is its consequence, not its cause.
//
// Stop does not cancel the context: a function that produces values for the
// pipeline should also watch [Group.Stopping] and, when it is closed, finish
// and close the channels it made.
func (g *Group) Go(name string, f func(ctx context.Context) error) {
	if f == nil {
		panic("pipeline: Go with a nil function")
	}
	g.start(func() error { return g.failure(name, f(g.ctx)) })
}

// Stop ends the pipeline gracefully and returns at once. Adopted sources
// ([From]) are closed, so they deliver what the kernel already holds and then
// close their channels; [FromSeq] sources stop taking values from their
// sequence. Every stage then drains its input, passes what it holds on, and
// closes its outputs; Wait returns nil unless something failed. Stop may be
// called more than once and from any goroutine, including a stage callback,
// and has the signature context.AfterFunc takes.
//
// Stop reaches only those two kinds of sources, and does not cancel the
// group's context: a function started with Go that returns only when the
// context is done, or that feeds a stage a channel of its own, must also
// watch [Group.Stopping], or Wait does not return after Stop.
func (g *Group) Stop() {
	g.stopOnce.Do(func() { close(g.stopping) })
}

// Stopping returns a channel that is closed when Stop is called. Functions
// started with Go that feed the pipeline watch it to end gracefully.
func (g *Group) Stopping() <-chan struct{} { return g.stopping }

// Done returns a channel that is closed once every goroutine the group has
// started has returned from its stage or callback, so that Wait would return
// without waiting for any of them; the group's context is cancelled by then
// if a stage failed. Like Wait, it sees the goroutines started so far: call
// it once the pipeline is built. While no goroutine runs (before the first
// stage, or after the last has ended) it returns a closed channel.
func (g *Group) Done() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.done
}

// Wait blocks until every goroutine of the group, and every user callback,
// has returned. It returns the first failure as a *StageError; the cause of
// the parent context (context.Cause) when that was cancelled; and nil when
// the pipeline ended by itself, after Stop, or after a consumer broke out of
// [All]. Wait then cancels the group's context. It may be called more than
// once and always returns the same result.
func (g *Group) Wait() error {
	err := g.eg.Wait() // the one *StageError that became the cause, if any: see failure
	g.waitOnce.Do(func() {
		g.cancel(errFinished)
		switch cause := context.Cause(g.ctx); {
		case err != nil:
			g.err = err
		case cause == errBroken:
		case g.parent.Err() != nil:
			// Also when the parent's cancellation has not reached the
			// group's context yet (it is closed before it is propagated,
			// and a parent of another kind propagates it in a goroutine).
			g.err = context.Cause(g.parent)
		}
	})
	return g.err
}

// start runs f in a goroutine of the group's errgroup. f returns what
// failure returned: nil, or the *StageError that aborted the group.
func (g *Group) start(f func() error) {
	g.mu.Lock()
	if g.running == 0 {
		g.done = make(chan struct{})
	}
	g.running++
	g.mu.Unlock()
	g.eg.Go(func() error {
		defer g.exit()
		return f()
	})
}

// spawn runs f, which cannot fail, in a goroutine of the group.
func (g *Group) spawn(f func()) { g.start(func() error { f(); return nil }) }

// exit counts a goroutine out; the last one closes Done's channel.
func (g *Group) exit() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running--; g.running == 0 {
		close(g.done)
	}
}

// failure aborts the group with err as a *StageError and returns it, for the
// errgroup to record as its first error; it returns nil when err is nil or
// is a consequence of an abort already under way (the group's context or
// the parent is already cancelled, or another cause won the race). So the
// errgroup's first error is always the cause of the group's context. A
// cancelled parent counts even before its cancellation has reached the
// group's context: a stage that saw it first must not become the cause.
func (g *Group) failure(name string, err error) error {
	if err == nil || g.ctx.Err() != nil || g.parent.Err() != nil {
		return nil
	}
	se := &StageError{Stage: name, Err: err}
	g.cancel(se)
	if context.Cause(g.ctx) != error(se) {
		return nil
	}
	return se
}

// output records ch as the output of one of g's stages, as the receive-only
// channel the stages reading it see.
func output[T any](g *Group, ch chan T) { g.own((<-chan T)(ch)) }

func (g *Group) own(ch any) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.outputs == nil {
		g.outputs = make(map[any]struct{})
	}
	g.outputs[ch] = struct{}{}
}

// inputDone returns what a stage reading in selects on besides in: the
// group context's Done channel, or nil when in is the output of another
// stage of the group. Such a channel is closed as soon as its stage sees the abort (every
// stage's sends select on Done), so a plain receive, which costs half a
// select, ends just as surely.
func (g *Group) inputDone(in any) <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.outputs[in]; ok {
		return nil
	}
	return g.ctx.Done()
}

// abort cancels the group with one of its own causes.
func (g *Group) abort(cause error) { g.cancel(cause) }
