package pipeline

import (
	"context"
	"errors"
	"sync"
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
	parent   context.Context
	ctx      context.Context
	cancel   context.CancelCauseFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
	stopping chan struct{}
	waitOnce sync.Once
	err      error // Wait's result

	mu      sync.Mutex
	stages  []*stage
	built   int              // stages built, From included: the default names' numbers
	outputs map[any]struct{} // every channel a stage of the group returned
}

// New returns a Group and the context its stages run with, derived from ctx.
// That context is cancelled when a stage fails, when ctx is cancelled, or
// when Wait returns.
func New(ctx context.Context) (*Group, context.Context) {
	if ctx == nil {
		panic("pipeline: New with a nil context")
	}
	gctx, cancel := context.WithCancelCause(ctx)
	g := &Group{parent: ctx, ctx: gctx, cancel: cancel, stopping: make(chan struct{})}
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
	g.spawn(func() { g.fail(name, f(g.ctx)) })
}

// Stop ends the pipeline gracefully and returns at once. Adopted sources
// ([From]) are closed, so they deliver what the kernel already holds and then
// close their channels; [FromSeq] sources stop taking values from their
// sequence. Every stage then drains its input, passes what it holds on, and
// closes its outputs; Wait returns nil unless something failed. Stop may be
// called more than once and from any goroutine, including a stage callback.
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

// Wait blocks until every goroutine of the group, and every user callback,
// has returned. It returns the first failure as a *StageError; the cause of
// the parent context (context.Cause) when that was cancelled; and nil when
// the pipeline ended by itself, after Stop, or after a consumer broke out of
// [All]. Wait then cancels the group's context. It may be called more than
// once and always returns the same result.
func (g *Group) Wait() error {
	g.wg.Wait()
	g.waitOnce.Do(func() {
		g.cancel(errFinished)
		switch err := context.Cause(g.ctx); err {
		case errFinished:
			// The parent's cancellation may not have reached the group's
			// context yet (it is closed before it is propagated, and a
			// parent of another kind propagates it in a goroutine).
			if g.parent.Err() != nil {
				g.err = context.Cause(g.parent)
			}
		case errBroken:
		default:
			g.err = err
		}
	})
	return g.err
}

// spawn runs f in a goroutine that Wait waits for.
func (g *Group) spawn(f func()) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
	}()
}

// fail aborts the group with err as a *StageError, unless err is nil or the
// group is already aborting (then err is a consequence of that abort). A
// cancelled parent counts even before its cancellation has reached the
// group's context: a stage that saw it first must not become the cause.
func (g *Group) fail(name string, err error) {
	if err == nil || g.ctx.Err() != nil || g.parent.Err() != nil {
		return
	}
	g.cancel(&StageError{Stage: name, Err: err})
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
// group's Done channel, or nil when in is the output of another stage of the
// group. Such a channel is closed as soon as its stage sees the abort (every
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
