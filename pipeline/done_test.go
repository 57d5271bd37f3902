package pipeline_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/bpfchan/bpfchan/pipeline"
)

// isClosed reports whether ch is closed, without waiting.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestWaitAndDoneWhileCallbackRuns: however the group ends (a Stop, a parent
// cancel, another stage's failure), neither Wait nor Done returns while a
// callback that ignores the context still runs; both do once it returns.
func TestWaitAndDoneWhileCallbackRuns(t *testing.T) {
	noLeaks(t)
	errBad := errors.New("bad")
	errQuit := errors.New("quit")
	tests := []struct {
		name string
		end  func(g *pipeline.Group, cancel context.CancelCauseFunc)
		want error
	}{
		{"stop", func(g *pipeline.Group, _ context.CancelCauseFunc) { g.Stop() }, nil},
		{"parent cancel", func(_ *pipeline.Group, cancel context.CancelCauseFunc) { cancel(errQuit) }, errQuit},
		{"stage failure", func(g *pipeline.Group, _ context.CancelCauseFunc) {
			g.Go("failing", func(context.Context) error { return errBad })
		}, errBad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				parent, cancel := context.WithCancelCause(t.Context())
				defer cancel(nil)
				g, _ := pipeline.New(parent)
				entered := make(chan struct{})
				release := make(chan struct{})
				pipeline.ForEach(g, pipeline.FromSeq(g, naturals()), func(context.Context, int) error {
					select {
					case <-entered:
					default:
						close(entered)
						<-release // stuck, deaf to the context, until the test releases it
					}
					return nil
				})
				<-entered
				tt.end(g, cancel)
				waited := make(chan error, 1)
				go func() { waited <- g.Wait() }()
				synctest.Wait() // everything that can run has run: only the callback holds the group
				select {
				case err := <-waited:
					t.Fatalf("Wait returned %v while a callback runs", err)
				default:
				}
				if isClosed(g.Done()) {
					t.Fatal("Done closed while a callback runs")
				}
				close(release)
				<-g.Done()
				if err := <-waited; !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
					t.Errorf("Wait: %v, want %v", err, tt.want)
				}
			})
		})
	}
}

// TestDone: Done is closed once every goroutine has returned, whatever
// ended the group, and the failure is the context's cause by then.
func TestDone(t *testing.T) {
	noLeaks(t)
	t.Run("empty group", func(t *testing.T) {
		g, _ := pipeline.New(t.Context())
		if !isClosed(g.Done()) {
			t.Error("Done open on a group with no goroutine, want closed")
		}
		if err := g.Wait(); err != nil {
			t.Errorf("Wait: %v, want nil", err)
		}
	})
	t.Run("natural end", func(t *testing.T) {
		g, _ := pipeline.New(t.Context())
		var sum int
		pipeline.ForEach(g, pipeline.FromSeq(g, upTo(10)), func(_ context.Context, v int) error { sum += v; return nil })
		<-g.Done()
		if sum != 45 { // every callback has returned: no race on sum (-race)
			t.Errorf("sum %d when Done closed, want 45", sum)
		}
		if err := g.Wait(); err != nil {
			t.Errorf("Wait: %v, want nil", err)
		}
	})
	t.Run("failure", func(t *testing.T) {
		errBad := errors.New("bad")
		g, ctx := pipeline.New(t.Context())
		pipeline.ForEach(g, pipeline.FromSeq(g, naturals()), func(_ context.Context, v int) error {
			if v == 10 {
				return errBad
			}
			return nil
		}, pipeline.Name("store"))
		<-g.Done()
		var se *pipeline.StageError
		if cause := context.Cause(ctx); !errors.As(cause, &se) || se.Stage != "store" {
			t.Errorf("context cause %v when Done closed, want stage store's error", cause)
		}
		if err := g.Wait(); err != context.Cause(ctx) {
			t.Errorf("Wait: %v, want the context's cause %v", err, context.Cause(ctx))
		}
	})
	t.Run("stage added after the others ended", func(t *testing.T) {
		// Every goroutine so far has returned: Done is closed. A stage built
		// then starts goroutines, and Done is open again until they return.
		g, _ := pipeline.New(t.Context())
		src := pipeline.FromSeq(g, upTo(3), pipeline.Buffer(3)) // fits: the source ends alone
		<-g.Done()
		release := make(chan struct{})
		var got []int
		pipeline.ForEach(g, src, func(_ context.Context, v int) error {
			<-release
			got = append(got, v)
			return nil
		})
		done := g.Done()
		if isClosed(done) {
			t.Fatal("Done closed while the new stage's callback waits, want open")
		}
		close(release)
		<-done
		if len(got) != 3 {
			t.Errorf("processed %v when Done closed, want 3 values", got)
		}
		if err := g.Wait(); err != nil {
			t.Errorf("Wait: %v, want nil", err)
		}
	})
}
