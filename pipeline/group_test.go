package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bpfchan/bpfchan/chans"
	"github.com/bpfchan/bpfchan/pipeline"
)

// naturals yields 0, 1, 2... forever: a source that never ends by itself.
func naturals() iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := 0; yield(i); i++ {
		}
	}
}

// upTo yields 0 … n-1.
func upTo(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := 0; i < n && yield(i); i++ {
		}
	}
}

func TestStageErrorStopsAll(t *testing.T) {
	noLeaks(t)
	errBad := errors.New("bad value")
	g, _ := pipeline.New(t.Context())
	// Two independent infinite branches: the error in one must stop both.
	a := pipeline.Map(g, pipeline.FromSeq(g, naturals()), func(_ context.Context, v int) (int, error) {
		if v == 1000 {
			return 0, errBad
		}
		return v, nil
	}, pipeline.Name("parse"))
	pipeline.ForEach(g, a, func(context.Context, int) error { return nil })
	b := pipeline.Filter(g, pipeline.FromSeq(g, naturals()), func(ctx context.Context, v int) (bool, error) {
		return v%2 == 0, ctx.Err() // after the abort, ctx.Err() is a consequence: not reported
	})
	pipeline.ForEach(g, b, func(context.Context, int) error { return nil })

	err := g.Wait()
	var se *pipeline.StageError
	if !errors.As(err, &se) || se.Stage != "parse" || !errors.Is(err, errBad) {
		t.Fatalf("Wait: %v, want a *StageError for stage parse wrapping %v", err, errBad)
	}
	if got, want := err.Error(), "pipeline: stage parse: bad value"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if err2 := g.Wait(); err2 != err {
		t.Errorf("second Wait: %v, want the same %v", err2, err)
	}
}

func TestGoErrorNamed(t *testing.T) {
	noLeaks(t)
	errBoom := errors.New("boom")
	g, ctx := pipeline.New(t.Context())
	g.Go("poller", func(context.Context) error { return errBoom })
	g.Go("waiter", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	err := g.Wait()
	var se *pipeline.StageError
	if !errors.As(err, &se) || se.Stage != "poller" || se.Err != errBoom {
		t.Fatalf("Wait: %v, want stage poller: boom", err)
	}
	if context.Cause(ctx) != err {
		t.Errorf("group ctx cause %v, want %v", context.Cause(ctx), err)
	}
}

func TestParentCancelReturnsCause(t *testing.T) {
	noLeaks(t)
	errQuit := errors.New("quit")
	parent, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	g, _ := pipeline.New(parent)
	out := pipeline.Map(g, pipeline.FromSeq(g, naturals()), func(ctx context.Context, v int) (int, error) {
		if v == 500 {
			cancel(errQuit)
			<-ctx.Done()
			return 0, ctx.Err() // a bare context.Canceled: must not surface
		}
		return v, nil
	}, pipeline.Workers(3))
	pipeline.ForEach(g, out, func(context.Context, int) error { return nil })
	if err := g.Wait(); err != errQuit {
		t.Fatalf("Wait: %v, want %v", err, errQuit)
	}
}

func TestWaitNilAfterCleanEnd(t *testing.T) {
	noLeaks(t)
	g, ctx := pipeline.New(t.Context())
	var sum int
	pipeline.ForEach(g, pipeline.FromSeq(g, upTo(100)), func(_ context.Context, v int) error { sum += v; return nil })
	if err := g.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if sum != 4950 {
		t.Errorf("sum %d, want 4950", sum)
	}
	if ctx.Err() == nil {
		t.Errorf("group ctx still live after Wait")
	}
}

// TestStopConserves stops infinite sources mid-flight through every kind of
// stage: everything the sources emitted reaches the sinks, and Wait is nil.
func TestStopConserves(t *testing.T) {
	noLeaks(t)
	g, _ := pipeline.New(t.Context())
	a := pipeline.FromSeq(g, naturals(), pipeline.Name("a"), pipeline.Buffer(8))
	b := pipeline.FromSeq(g, naturals(), pipeline.Name("b"))
	m := pipeline.Merge(g, a, b)
	sq := pipeline.Map(g, m, func(_ context.Context, v int) (int, error) { return v, nil }, pipeline.Workers(4), pipeline.Ordered(), pipeline.Buffer(16))
	un := pipeline.Map(g, sq, func(_ context.Context, v int) (int, error) { return v, nil }, pipeline.Workers(3))
	tees := pipeline.Tee(g, un, 2)
	shards := pipeline.Shard(g, tees[0], 3, func(v int) int { return v })
	var got [3]int
	for i, s := range shards {
		pipeline.ForEach(g, s, func(context.Context, int) error { got[i]++; return nil })
	}
	batches := pipeline.Batch(g, tees[1], 7, 0)
	var batched atomic.Uint64
	pipeline.ForEach(g, batches, func(_ context.Context, b []int) error {
		if batched.Add(uint64(len(b))) >= 5000 {
			g.Stop() // from inside a callback
		}
		return nil
	}, pipeline.Workers(2))

	if err := g.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	st := g.Stats()
	emitted := st[0].Out + st[1].Out
	if emitted < 5000 {
		t.Fatalf("sources emitted %d, want at least 5000", emitted)
	}
	if sharded := uint64(got[0] + got[1] + got[2]); sharded != emitted {
		t.Errorf("shards processed %d, sources emitted %d", sharded, emitted)
	}
	if batched := batched.Load(); batched != emitted {
		t.Errorf("batches held %d, sources emitted %d", batched, emitted)
	}
	for _, s := range st {
		if s.Dropped != 0 {
			t.Errorf("stage %s dropped %d", s.Name, s.Dropped)
		}
	}
}

func TestAll(t *testing.T) {
	noLeaks(t)
	t.Run("ends", func(t *testing.T) {
		g, _ := pipeline.New(t.Context())
		var got []int
		for v, err := range pipeline.All(g, pipeline.FromSeq(g, upTo(5))) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, v)
		}
		if !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
			t.Errorf("got %v", got)
		}
	})
	t.Run("break", func(t *testing.T) {
		g, _ := pipeline.New(t.Context())
		sq := pipeline.Map(g, pipeline.FromSeq(g, naturals()), func(_ context.Context, v int) (int, error) { return v * v, nil }, pipeline.Workers(2))
		n := 0
		for _, err := range pipeline.All(g, sq) {
			if err != nil {
				t.Fatal(err)
			}
			if n++; n == 10 {
				break // aborts the infinite pipeline and waits for it
			}
		}
		if err := g.Wait(); err != nil {
			t.Fatalf("Wait after break: %v", err)
		}
	})
	t.Run("error", func(t *testing.T) {
		errBad := errors.New("bad")
		g, _ := pipeline.New(t.Context())
		out := pipeline.Map(g, pipeline.FromSeq(g, naturals()), func(_ context.Context, v int) (int, error) {
			if v == 3 {
				return 0, errBad
			}
			return v, nil
		})
		var errs []error
		for _, err := range pipeline.All(g, out) {
			if err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) != 1 || !errors.Is(errs[0], errBad) {
			t.Fatalf("errors yielded: %v, want one wrapping %v", errs, errBad)
		}
	})
}

// TestRecoverInCallback is the documented way to survive a panic: the
// callback recovers it itself and returns an error.
func TestRecoverInCallback(t *testing.T) {
	noLeaks(t)
	g, _ := pipeline.New(t.Context())
	out := pipeline.Map(g, pipeline.FromSeq(g, naturals()), func(_ context.Context, v int) (r int, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("parse %d: %v", v, p)
			}
		}()
		return 100 / (7 - v), nil
	}, pipeline.Name("parse"))
	pipeline.ForEach(g, out, func(context.Context, int) error { return nil })
	err := g.Wait()
	var se *pipeline.StageError
	if !errors.As(err, &se) || se.Stage != "parse" || !strings.Contains(err.Error(), "divide by zero") {
		t.Fatalf("Wait: %v, want stage parse: … divide by zero", err)
	}
}

// TestCallbackPanicPropagates runs a pipeline whose callback panics in a
// child process: the panic is not recovered and crashes it, with the
// callback's message. The parent runs no pipeline and leaks nothing: the
// goroutine leak checks (noLeaks, testenv.Main) run in the parent, since the
// child dies of the panic before any check could run there.
func TestCallbackPanicPropagates(t *testing.T) {
	noLeaks(t)
	if os.Getenv("PIPELINE_PANIC_CHILD") == "1" {
		g, _ := pipeline.New(context.Background())
		out := pipeline.Map(g, pipeline.FromSeq(g, naturals()), func(_ context.Context, v int) (int, error) {
			if v == 10 {
				panic("callback bug at 10")
			}
			return v, nil
		})
		pipeline.ForEach(g, out, func(context.Context, int) error { return nil })
		g.Wait()
		t.Fatal("Wait returned after a callback panic")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCallbackPanicPropagates$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PIPELINE_PANIC_CHILD=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("child: %v, want exit status 2 (an unrecovered panic)\n%s", err, out)
	}
	if !strings.Contains(string(out), "panic: callback bug at 10") {
		t.Fatalf("child output lacks the panic:\n%s", out)
	}
}

func TestMisusePanics(t *testing.T) {
	noLeaks(t)
	id := func(_ context.Context, v int) (int, error) { return v, nil }
	tests := []struct {
		name string
		f    func(g *pipeline.Group, in <-chan int)
	}{
		{"nil map func", func(g *pipeline.Group, in <-chan int) { pipeline.Map[int, int](g, in, nil) }},
		{"nil filter func", func(g *pipeline.Group, in <-chan int) { pipeline.Filter(g, in, nil) }},
		{"nil foreach func", func(g *pipeline.Group, in <-chan int) { pipeline.ForEach(g, in, nil) }},
		{"nil input", func(g *pipeline.Group, _ <-chan int) { pipeline.Map(g, nil, id) }},
		{"nil group", func(_ *pipeline.Group, in <-chan int) { pipeline.Map(nil, in, id) }},
		{"workers 0", func(g *pipeline.Group, in <-chan int) { pipeline.Map(g, in, id, pipeline.Workers(0)) }},
		{"negative buffer", func(g *pipeline.Group, in <-chan int) { pipeline.Map(g, in, id, pipeline.Buffer(-1)) }},
		{"batch size 0", func(g *pipeline.Group, in <-chan int) { pipeline.Batch(g, in, 0, 0) }},
		{"batch workers", func(g *pipeline.Group, in <-chan int) { pipeline.Batch(g, in, 4, 0, pipeline.Workers(2)) }},
		{"foreach buffer", func(g *pipeline.Group, in <-chan int) {
			pipeline.ForEach(g, in, func(context.Context, int) error { return nil }, pipeline.Buffer(1))
		}},
		{"tee 0", func(g *pipeline.Group, in <-chan int) { pipeline.Tee(g, in, 0) }},
		{"tee branch range", func(g *pipeline.Group, in <-chan int) { pipeline.Tee(g, in, 2, pipeline.Branch(2, pipeline.Buffer(1))) }},
		{"branch workers", func(g *pipeline.Group, in <-chan int) {
			pipeline.Tee(g, in, 2, pipeline.Branch(1, pipeline.Workers(2)))
		}},
		{"shard nil key", func(g *pipeline.Group, in <-chan int) { pipeline.Shard(g, in, 2, nil) }},
		{"merge none", func(g *pipeline.Group, _ <-chan int) { pipeline.Merge[int](g) }},
		{"drop oldest unordered", func(g *pipeline.Group, in <-chan int) {
			pipeline.Map(g, in, id, pipeline.Workers(2), pipeline.Overflow(chans.DropOldest))
		}},
		{"go nil", func(g *pipeline.Group, _ <-chan int) { g.Go("x", nil) }},
		{"from nil", func(g *pipeline.Group, _ <-chan int) { pipeline.From[int](g, nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, _ := pipeline.New(t.Context())
			defer g.Wait()
			in := make(chan int)
			defer func() {
				p := recover()
				msg, _ := p.(string)
				if !strings.HasPrefix(msg, "pipeline: ") {
					t.Fatalf("panic %v, want a message with the pipeline: prefix", p)
				}
			}()
			tt.f(g, in)
		})
	}
}

// TestStopReachesGoFeeders: a Go function that feeds a stage a channel of
// its own and one that only ticks both watch Stopping, as the doc asks, and
// end on Stop; what the feeder sent is all processed.
func TestStopReachesGoFeeders(t *testing.T) {
	noLeaks(t)
	g, _ := pipeline.New(t.Context())
	feed := make(chan int)
	var sent, got int
	g.Go("feeder", func(ctx context.Context) error {
		defer close(feed)
		for i := 0; ; i++ {
			select {
			case feed <- i:
				sent++
			case <-g.Stopping():
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	})
	g.Go("ticker", func(ctx context.Context) error {
		select {
		case <-g.Stopping():
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	sq := pipeline.Map(g, feed, func(_ context.Context, v int) (int, error) { return v * v, nil })
	pipeline.ForEach(g, sq, func(context.Context, int) error {
		if got++; got == 100 {
			g.Stop()
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if got != sent || got < 100 {
		t.Errorf("processed %d of %d sent, want all and at least 100", got, sent)
	}
}

// heldParent is a parent context whose cancellation reaches its children
// only when the test says: it implements AfterFunc, which the context
// package uses to propagate a cancellation, and runs those functions on
// release. It shows the window in which the parent is done and the group's
// context not yet.
type heldParent struct {
	context.Context
	done  chan struct{}
	mu    sync.Mutex
	err   error
	funcs []func()
}

func newHeldParent() *heldParent {
	return &heldParent{Context: context.Background(), done: make(chan struct{})}
}

func (p *heldParent) Done() <-chan struct{} { return p.done }
func (p *heldParent) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}
func (p *heldParent) AfterFunc(f func()) func() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.funcs = append(p.funcs, f)
	return func() bool { return true }
}

// cancel marks p cancelled without propagating it.
func (p *heldParent) cancel() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = context.Canceled
	close(p.done)
}

// release propagates the cancellation.
func (p *heldParent) release() {
	p.mu.Lock()
	funcs := p.funcs
	p.mu.Unlock()
	for _, f := range funcs {
		f()
	}
}

// TestParentCancelBeforePropagation: a function that sees the parent's
// cancellation before the group's context does returns an error that is a
// consequence, not a stage failure: Wait returns the parent's cause.
func TestParentCancelBeforePropagation(t *testing.T) {
	noLeaks(t)
	parent := newHeldParent()
	defer parent.release()
	g, _ := pipeline.New(parent)
	g.Go("source", func(context.Context) error {
		<-parent.Done() // a pump created with the parent's context
		return errors.New("source: context canceled")
	})
	parent.cancel()
	if err := g.Wait(); err != context.Canceled {
		t.Fatalf("Wait: %v, want the parent's cause %v", err, context.Canceled)
	}
	parent.release()
	if err := g.Wait(); err != context.Canceled {
		t.Fatalf("second Wait: %v, want the same %v", err, context.Canceled)
	}
}

// TestOptionRefused: an option a stage cannot honour panics when the stage
// is built, naming the option, instead of being silently replaced;
// combinations the stage can honour build.
func TestOptionRefused(t *testing.T) {
	noLeaks(t)
	id := func(_ context.Context, v int) (int, error) { return v, nil }
	keep := func(context.Context, int) (bool, error) { return true, nil }
	oldest := pipeline.Overflow(chans.DropOldest)
	const evict = "Overflow(drop-oldest) needs Buffer(n > 0): an unbuffered output holds nothing to evict"
	tests := []struct {
		name  string
		build func(g *pipeline.Group, in <-chan int)
		want  string // the panic message; "" for none
	}{
		{"map oldest unbuffered", func(g *pipeline.Group, in <-chan int) { pipeline.Map(g, in, id, oldest) },
			"pipeline: map: " + evict},
		{"ordered map oldest unbuffered", func(g *pipeline.Group, in <-chan int) {
			pipeline.Map(g, in, id, pipeline.Workers(2), pipeline.Ordered(), oldest)
		}, "pipeline: map: " + evict},
		{"filter oldest unbuffered", func(g *pipeline.Group, in <-chan int) { pipeline.Filter(g, in, keep, oldest) },
			"pipeline: filter: " + evict},
		{"batch oldest unbuffered", func(g *pipeline.Group, in <-chan int) { pipeline.Batch(g, in, 4, 0, oldest) },
			"pipeline: batch: " + evict},
		{"seq oldest unbuffered", func(g *pipeline.Group, _ <-chan int) { pipeline.FromSeq(g, upTo(3), oldest) },
			"pipeline: seq: " + evict},
		{"tee oldest, one output unbuffered", func(g *pipeline.Group, in <-chan int) {
			pipeline.Tee(g, in, 2, oldest, pipeline.Branch(1, pipeline.Buffer(4)))
		}, "pipeline: tee output 0: " + evict},
		{"tee branch unbuffers", func(g *pipeline.Group, in <-chan int) {
			pipeline.Tee(g, in, 2, oldest, pipeline.Buffer(4), pipeline.Branch(1, pipeline.Buffer(0)))
		}, "pipeline: tee output 1: " + evict},
		{"shard branch oldest unbuffered", func(g *pipeline.Group, in <-chan int) {
			pipeline.Shard(g, in, 2, func(v int) int { return v }, pipeline.Branch(1, oldest))
		}, "pipeline: shard output 1: " + evict},
		{"unordered workers oldest", func(g *pipeline.Group, in <-chan int) {
			pipeline.Map(g, in, id, pipeline.Workers(2), pipeline.Buffer(4), oldest)
		}, "pipeline: map: Overflow(drop-oldest) needs a single sender: add Ordered() or use one worker"},
		{"batch negative maxAge", func(g *pipeline.Group, in <-chan int) { pipeline.Batch(g, in, 4, -time.Millisecond) },
			"pipeline: Batch(maxAge -1ms): negative; 0 means no age flush"},
		{"foreach buffer", func(g *pipeline.Group, in <-chan int) {
			pipeline.ForEach(g, in, func(context.Context, int) error { return nil }, pipeline.Buffer(1))
		}, "pipeline: foreach does not take the Buffer option"},
		{"from overflow", func(g *pipeline.Group, _ <-chan int) {
			pipeline.From[int](g, newFailing(0, nil), pipeline.Overflow(chans.DropNewest))
		}, "pipeline: from does not take the Overflow option"},
		{"tee branch name", func(g *pipeline.Group, in <-chan int) {
			pipeline.Tee(g, in, 2, pipeline.Branch(0, pipeline.Name("x")))
		}, "pipeline: tee branch does not take the Name option"},

		{"map oldest buffered", func(g *pipeline.Group, in <-chan int) { pipeline.Map(g, in, id, pipeline.Buffer(1), oldest) }, ""},
		{"ordered map oldest buffered", func(g *pipeline.Group, in <-chan int) {
			pipeline.Map(g, in, id, pipeline.Workers(2), pipeline.Ordered(), pipeline.Buffer(1), oldest)
		}, ""},
		{"batch oldest buffered, no age flush", func(g *pipeline.Group, in <-chan int) {
			pipeline.Batch(g, in, 4, 0, pipeline.Buffer(1), oldest)
		}, ""},
		{"tee one branch oldest", func(g *pipeline.Group, in <-chan int) {
			pipeline.Tee(g, in, 2, pipeline.Branch(1, pipeline.Buffer(4), oldest))
		}, ""},
		{"map newest unbuffered", func(g *pipeline.Group, in <-chan int) {
			pipeline.Map(g, in, id, pipeline.Overflow(chans.DropNewest))
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, _ := pipeline.New(t.Context())
			in := make(chan int)
			close(in) // a stage that builds ends at once
			defer func() {
				p := recover()
				got, _ := p.(string)
				if p != nil && got == "" {
					t.Fatalf("panic %v, want a string", p)
				}
				if got != tt.want {
					t.Errorf("panic %q, want %q", got, tt.want)
				}
				if err := g.Wait(); err != nil {
					t.Errorf("Wait: %v", err)
				}
			}()
			tt.build(g, in)
		})
	}
}
