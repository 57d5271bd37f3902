package watch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfchan/bpfchan/internal/snapshot"
	"github.com/bpfchan/bpfchan/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// forever is an interval long enough that only pollNow drives polls.
const forever = time.Hour

func mkMap(tb testing.TB, spec *ebpf.MapSpec) *ebpf.Map {
	tb.Helper()
	testenv.RequireBPF(tb)
	m, err := ebpf.NewMap(spec)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

func hash(tb testing.TB, n uint32) *ebpf.Map {
	return mkMap(tb, &ebpf.MapSpec{Name: "watched", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: n})
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// recv takes the next value from r, failing the test when r stops first.
func recv[T any](t *testing.T, w *Watcher[T]) T {
	t.Helper()
	v, ok := <-w.C()
	if !ok {
		t.Fatalf("C closed early; Wait: %v", w.Wait())
	}
	return v
}

// step makes w poll once, and returns after that poll (and the accounting of
// any send before it) is done.
func step[T any](t *testing.T, w *Watcher[T]) {
	t.Helper()
	if !w.pollNow() {
		t.Fatalf("watcher stopped: %v", w.Wait())
	}
}

// closeWatcher closes w while discarding what it still delivers, and
// returns how many values that was.
func closeWatcher[T any](t *testing.T, w *Watcher[T]) int {
	t.Helper()
	var (
		drained sync.WaitGroup
		n       int
	)
	drained.Go(func() {
		for range w.C() {
			n++
		}
	})
	err := w.Close()
	drained.Wait()
	if err != nil {
		t.Fatalf("Close: %v", err)
	}
	return n
}

func TestKeyAppearsAfterWaitStarts(t *testing.T) {
	m := hash(t, 8)
	missed := make(chan struct{})
	var once sync.Once
	type result struct {
		v   uint64
		err error
	}
	res := make(chan result, 1)
	go func() {
		v, err := waitKey[uint32, uint64](context.Background(), m, 7, func() { once.Do(func() { close(missed) }) },
			WithInterval(time.Millisecond))
		res <- result{v, err}
	}()
	<-missed // the first look found nothing
	must(t, m.Put(uint32(7), uint64(42)))
	r := <-res
	if r.err != nil || r.v != 42 {
		t.Fatalf("got %d, %v; want 42, nil", r.v, r.err)
	}
}

// TestKeyAdaptive checks the pauses between Key's looks with WithAdaptive:
// min first, then doubling.
func TestKeyAdaptive(t *testing.T) {
	m := hash(t, 8)
	synctest.Test(t, func(t *testing.T) {
		ms := time.Millisecond
		var looks []time.Time
		missed := func() {
			looks = append(looks, time.Now())
			if len(looks) == 4 {
				must(t, m.Put(uint32(7), uint64(70)))
			}
		}
		v, err := waitKey[uint32, uint64](context.Background(), m, 7, missed, WithAdaptive(ms, 3*ms))
		if err != nil || v != 70 {
			t.Fatalf("got %d, %v; want 70, nil", v, err)
		}
		var gaps []time.Duration
		for i := 1; i < len(looks); i++ {
			gaps = append(gaps, looks[i].Sub(looks[i-1]))
		}
		if want := []time.Duration{ms, 2 * ms, 3 * ms}; !slices.Equal(gaps, want) {
			t.Fatalf("pauses between looks %v, want %v", gaps, want)
		}
	})
}

func TestKeyPresentReturnsAtOnce(t *testing.T) {
	m := hash(t, 8)
	must(t, m.Put(uint32(1), uint64(9)))
	v, err := Key[uint32, uint64](context.Background(), m, 1)
	if err != nil || v != 9 {
		t.Fatalf("got %d, %v; want 9, nil", v, err)
	}
}

func TestKeyCancellation(t *testing.T) {
	m := hash(t, 8)
	cause := errors.New("operator gave up")

	t.Run("already cancelled", func(t *testing.T) {
		must(t, m.Put(uint32(1), uint64(1))) // present, but a cancelled ctx does not look
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(cause)
		looks := 0
		_, err := waitKey[uint32, uint64](ctx, m, 1, func() { looks++ })
		if !errors.Is(err, cause) || looks != 0 {
			t.Fatalf("got %v after %d looks; want the cause after 0", err, looks)
		}
	})

	t.Run("cancelled while waiting", func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		var once sync.Once
		_, err := waitKey[uint32, uint64](ctx, m, 3, func() { once.Do(func() { cancel(cause) }) }, WithInterval(forever))
		if !errors.Is(err, cause) || !errors.Is(err, ErrKeyNotExist) {
			t.Fatalf("got %v; want the cause and ErrKeyNotExist", err)
		}
	})

	t.Run("expired deadline looks once", func(t *testing.T) {
		ctx, cancel := context.WithDeadline(context.Background(), time.Unix(1, 0))
		defer cancel()
		looks := 0
		_, err := waitKey[uint32, uint64](ctx, m, 4, func() { looks++ })
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrKeyNotExist) || looks != 1 {
			t.Fatalf("got %v after %d looks; want DeadlineExceeded and ErrKeyNotExist after 1", err, looks)
		}
		must(t, m.Put(uint32(4), uint64(44)))
		v, err := Key[uint32, uint64](ctx, m, 4)
		if err != nil || v != 44 {
			t.Fatalf("present key, expired deadline: got %d, %v; want 44, nil", v, err)
		}
	})
}

func TestChanges(t *testing.T) {
	m := hash(t, 8)
	must(t, m.Put(uint32(1), uint64(100)))
	w, err := Changes[uint32, uint64](context.Background(), m, 1, WithInterval(forever))
	must(t, err)
	defer closeWatcher(t, w)

	must(t, m.Put(uint32(1), uint64(200)))
	step(t, w)
	if got, want := recv(t, w), (Change[uint64]{Old: 100, New: 200, Present: true}); got != want {
		t.Fatalf("update: got %+v, want %+v", got, want)
	}

	// An unchanged rewrite: a poll happens, nothing is emitted.
	before := w.Stats()
	must(t, m.Put(uint32(1), uint64(200)))
	step(t, w)
	after := w.Stats()
	if after.Polls != before.Polls+1 || after.Changes != before.Changes || after.Pending != 0 {
		t.Fatalf("rewrite: stats went from %+v to %+v; want one more poll, no change", before, after)
	}

	must(t, m.Delete(uint32(1)))
	step(t, w)
	if got, want := recv(t, w), (Change[uint64]{Old: 200}); got != want {
		t.Fatalf("delete: got %+v, want %+v", got, want)
	}
	must(t, m.Put(uint32(1), uint64(300)))
	step(t, w)
	if got, want := recv(t, w), (Change[uint64]{New: 300, Present: true}); got != want {
		t.Fatalf("re-create: got %+v, want %+v", got, want)
	}
	step(t, w) // the goroutine has accounted for the last send
	if s := w.Stats(); s.Events != 3 || s.Changes != 3 {
		t.Fatalf("stats %+v; want 3 changes, 3 events", s)
	}
}

func TestChangesInitial(t *testing.T) {
	m := hash(t, 8)
	must(t, m.Put(uint32(1), uint64(5)))
	for _, tc := range []struct {
		key  uint32
		want Change[uint64]
	}{
		{1, Change[uint64]{New: 5, Present: true}},
		{2, Change[uint64]{}},
	} {
		w, err := Changes[uint32, uint64](context.Background(), m, tc.key, WithInitial(), WithInterval(forever))
		must(t, err)
		if got := recv(t, w); got != tc.want {
			t.Errorf("key %d: got %+v, want %+v", tc.key, got, tc.want)
		}
		closeWatcher(t, w)
	}
	// The key changes before the consumer looks at the initial state: it
	// receives one event, the state at its first look, and never nothing.
	must(t, m.Put(uint32(4), uint64(44)))
	for _, tc := range []struct {
		name string
		key  uint32
		ops  []func() error
		want Change[uint64]
	}{
		{"absent, created", 3, []func() error{
			func() error { return m.Put(uint32(3), uint64(33)) },
		}, Change[uint64]{New: 33, Present: true}},
		{"present, deleted", 4, []func() error{
			func() error { return m.Delete(uint32(4)) },
		}, Change[uint64]{}},
		{"absent, created, deleted", 5, []func() error{
			func() error { return m.Put(uint32(5), uint64(55)) },
			func() error { return m.Delete(uint32(5)) },
		}, Change[uint64]{}},
	} {
		w, err := Changes[uint32, uint64](context.Background(), m, tc.key, WithInitial(), WithInterval(forever))
		must(t, err)
		for _, op := range tc.ops {
			must(t, op())
			step(t, w)
		}
		if s := w.Stats(); s.Pending != 1 {
			t.Fatalf("%s: %d pending, want the initial state", tc.name, s.Pending)
		}
		if got := recv(t, w); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
		closeWatcher(t, w)
	}
}

func TestChangesWithEqual(t *testing.T) {
	m := hash(t, 8)
	must(t, m.Put(uint32(1), uint64(100)))
	near := func(a, b uint64) bool { return max(a, b)-min(a, b) < 10 }
	w, err := Changes[uint32, uint64](context.Background(), m, 1, WithEqual(near), WithInterval(forever))
	must(t, err)
	defer closeWatcher(t, w)
	for _, v := range []uint64{105, 109} {
		must(t, m.Put(uint32(1), v))
		step(t, w)
	}
	must(t, m.Put(uint32(1), uint64(112)))
	step(t, w)
	if got, want := recv(t, w), (Change[uint64]{Old: 100, New: 112, Present: true}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

type lpmKey struct {
	Prefix uint32
	Addr   [4]byte
}

func TestMapSequence(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec ebpf.MapSpec
	}{
		{"hash", ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: 8, MaxEntries: 16}},
		{"lru hash", ebpf.MapSpec{Type: ebpf.LRUHash, KeySize: 8, ValueSize: 8, MaxEntries: 16}},
		{"lpm trie", ebpf.MapSpec{Type: ebpf.LPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: 16, Flags: unix.BPF_F_NO_PREALLOC}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mkMap(t, &tc.spec)
			a, b := lpmKey{24, [4]byte{10, 0, 0}}, lpmKey{16, [4]byte{10, 1}}
			w, err := Map[lpmKey, uint64](context.Background(), m, WithInterval(forever))
			must(t, err)
			defer closeWatcher(t, w)
			want := []Event[lpmKey, uint64]{
				{Kind: Added, Key: a, New: 1},
				{Kind: Added, Key: b, New: 2},
				{Kind: Updated, Key: a, Old: 1, New: 3},
				{Kind: Deleted, Key: b, Old: 2},
			}
			ops := []func() error{
				func() error { return m.Put(a, uint64(1)) },
				func() error { return m.Put(b, uint64(2)) },
				func() error { return m.Put(a, uint64(3)) },
				func() error { return m.Delete(b) },
			}
			for i, op := range ops {
				must(t, op())
				step(t, w)
				if got := recv(t, w); got != want[i] {
					t.Fatalf("step %d: got %v, want %v", i, got, want[i])
				}
			}
			step(t, w)
			if s := w.Stats(); s.Events != 4 || s.Changes != 4 || s.Coalesced != 0 || s.Pending != 0 {
				t.Fatalf("stats %+v; want 4 changes delivered", s)
			}
		})
	}
}

func TestMapArrays(t *testing.T) {
	for _, flags := range []uint32{0, unix.BPF_F_MMAPABLE} {
		t.Run(fmt.Sprintf("flags %#x", flags), func(t *testing.T) {
			m := mkMap(t, &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 64, Flags: flags})
			must(t, m.Put(uint32(3), uint32(30)))
			w, err := Map[uint32, uint32](context.Background(), m, WithInitial(), WithInterval(forever))
			must(t, err)
			defer closeWatcher(t, w)
			for i := range uint32(64) {
				e := recv(t, w)
				want := Event[uint32, uint32]{Kind: Added, Key: i}
				if i == 3 {
					want.New = 30
				}
				if e != want {
					t.Fatalf("initial %d: got %v, want %v", i, e, want)
				}
			}
			must(t, m.Put(uint32(3), uint32(31)))
			step(t, w)
			if got, want := recv(t, w), (Event[uint32, uint32]{Kind: Updated, Key: 3, Old: 30, New: 31}); got != want {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

// TestCoalescing checks what a consumer that does not read receives: at most
// one event per key, merged to span from the state it last saw to the latest.
func TestCoalescing(t *testing.T) {
	m := hash(t, 16)
	must(t, m.Put(uint32(10), uint64(1))) // d: updated, then deleted
	must(t, m.Put(uint32(11), uint64(1))) // e: updated and back
	must(t, m.Put(uint32(12), uint64(1))) // f: deleted, re-created with another value
	w, err := Map[uint32, uint64](context.Background(), m, WithInterval(forever))
	must(t, err)
	defer closeWatcher(t, w)
	ops := []func() error{
		func() error { return m.Put(uint32(1), uint64(1)) },  // a added
		func() error { return m.Put(uint32(1), uint64(2)) },  // a updated: Added a=2
		func() error { return m.Put(uint32(2), uint64(5)) },  // c added
		func() error { return m.Delete(uint32(2)) },          // c deleted: nothing
		func() error { return m.Put(uint32(10), uint64(2)) }, // d updated
		func() error { return m.Delete(uint32(10)) },         // d deleted: Deleted d, Old 1
		func() error { return m.Put(uint32(11), uint64(2)) }, // e updated
		func() error { return m.Put(uint32(11), uint64(1)) }, // e back: nothing
		func() error { return m.Delete(uint32(12)) },         // f deleted
		func() error { return m.Put(uint32(12), uint64(7)) }, // f re-created: Updated 1→7
		func() error { return m.Put(uint32(1), uint64(3)) },  // a again: Added a=3
	}
	for _, op := range ops {
		must(t, op())
		step(t, w)
	}
	s := w.Stats()
	if s.Changes != 11 || s.Pending != 3 || s.Coalesced != 8 || s.Events != 0 {
		t.Fatalf("stats %+v; want 11 changes, 3 pending, 8 coalesced", s)
	}
	want := []Event[uint32, uint64]{
		{Kind: Added, Key: 1, New: 3},
		{Kind: Deleted, Key: 10, Old: 1},
		{Kind: Updated, Key: 12, Old: 1, New: 7},
	}
	for i := range want {
		if got := recv(t, w); got != want[i] {
			t.Fatalf("event %d: got %v, want %v", i, got, want[i])
		}
	}
	step(t, w)
	if s := w.Stats(); s.Changes != s.Events+s.Coalesced+uint64(s.Pending) || s.Pending != 0 {
		t.Fatalf("stats %+v do not add up", s)
	}
}

func TestStopping(t *testing.T) {
	m := hash(t, 8)
	cause := errors.New("shutting down")

	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		w, err := Map[uint32, uint64](ctx, m, WithInterval(forever))
		must(t, err)
		cancel(cause)
		for range w.C() {
		}
		if err := w.Wait(); !errors.Is(err, cause) {
			t.Fatalf("Wait: got %v, want the cause", err)
		}
		if err := w.Close(); !errors.Is(err, cause) {
			t.Fatalf("Close after cancel: got %v, want the cause", err)
		}
	})

	t.Run("close delivers pending", func(t *testing.T) {
		w, err := Map[uint32, uint64](context.Background(), m, WithInterval(forever))
		must(t, err)
		must(t, m.Put(uint32(1), uint64(1)))
		step(t, w)                           // taken by a poll: pending
		must(t, m.Put(uint32(2), uint64(2))) // not polled yet: Close's last poll takes it
		closed := make(chan error, 1)
		go func() { closed <- w.Close() }()
		want := []Event[uint32, uint64]{{Kind: Added, Key: 1, New: 1}, {Kind: Added, Key: 2, New: 2}}
		var got []Event[uint32, uint64]
		for e := range w.C() {
			got = append(got, e)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("after Close: got %v, want %v", got, want)
		}
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := w.Wait(); err != nil {
			t.Fatalf("Wait after Close: %v", err)
		}
		if s := w.Stats(); s.Discarded != 0 || s.Pending != 0 || s.Events != 2 || s.Changes != 2 {
			t.Fatalf("stats %+v; want both changes delivered", s)
		}
		must(t, m.Delete(uint32(1)))
		must(t, m.Delete(uint32(2)))
	})

	t.Run("cancel discards pending", func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		w, err := Map[uint32, uint64](ctx, m, WithInterval(forever))
		must(t, err)
		must(t, m.Put(uint32(1), uint64(1)))
		step(t, w)
		cancel(cause)
		if err := w.Wait(); !errors.Is(err, cause) {
			t.Fatalf("Wait: got %v, want the cause", err)
		}
		if _, ok := <-w.C(); ok {
			t.Fatal("C delivered after the ctx was cancelled")
		}
		if s := w.Stats(); s.Discarded != 1 || s.Pending != 0 || s.Events != 0 {
			t.Fatalf("stats %+v; want the pending change discarded", s)
		}
		must(t, m.Delete(uint32(1)))
	})

	t.Run("cancel ends a Close", func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		w, err := Map[uint32, uint64](ctx, m, WithInterval(forever))
		must(t, err)
		must(t, m.Put(uint32(1), uint64(1)))
		must(t, m.Put(uint32(2), uint64(2)))
		step(t, w)
		closed := make(chan error, 1)
		go func() { closed <- w.Close() }()
		recv(t, w) // Close is delivering; the consumer takes one and gives up
		cancel(cause)
		if err := <-closed; !errors.Is(err, cause) {
			t.Fatalf("Close: got %v, want the cause", err)
		}
		if _, ok := <-w.C(); ok {
			t.Fatal("C delivered after the ctx was cancelled")
		}
		if s := w.Stats(); s.Discarded != 1 || s.Events != 1 || s.Changes != 2 {
			t.Fatalf("stats %+v; want 1 delivered, 1 discarded", s)
		}
		must(t, m.Delete(uint32(1)))
		must(t, m.Delete(uint32(2)))
	})

	t.Run("cancelled before construction", func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(cause)
		if _, err := Changes[uint32, uint64](ctx, m, 1); !errors.Is(err, cause) {
			t.Fatalf("got %v, want the cause", err)
		}
	})
}

// TestMapWithEqual: values that WithEqual finds equal to the last reported
// one are no change, for every way a whole map is read.
func TestMapWithEqual(t *testing.T) {
	near := func(a, b uint64) bool { return max(a, b)-min(a, b) < 10 }
	for _, spec := range []ebpf.MapSpec{
		{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 8},
		{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 8},
		{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 8, Flags: unix.BPF_F_MMAPABLE},
	} {
		t.Run(fmt.Sprintf("%s flags %#x", spec.Type, spec.Flags), func(t *testing.T) {
			m := mkMap(t, &spec)
			must(t, m.Put(uint32(1), uint64(100)))
			w, err := Map[uint32, uint64](context.Background(), m, WithEqual(near), WithInterval(forever))
			must(t, err)
			defer closeWatcher(t, w)
			for _, v := range []uint64{105, 109, 95} {
				must(t, m.Put(uint32(1), v))
				step(t, w)
			}
			if s := w.Stats(); s.Changes != 0 {
				t.Fatalf("values near 100: %d changes, want none", s.Changes)
			}
			must(t, m.Put(uint32(1), uint64(112)))
			step(t, w)
			if got, want := recv(t, w), (Event[uint32, uint64]{Kind: Updated, Key: 1, Old: 100, New: 112}); got != want {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

// TestBadInput: what cannot be watched is refused at construction with one
// line that names the map as every bpfchan error does.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	h := mkMap(t, &ebpf.MapSpec{Name: "counts", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 8})
	must(t, h.Put(uint32(1), uint64(1))) // Key would return at once without the error
	name := fmt.Sprintf(`watch Hash map "counts" (id %d): `, mapID(t, h))
	for _, tc := range []struct {
		name string
		err  error
		want []string
	}{
		{"key size", second(Map[uint64, uint64](ctx, h)), []string{name, "key size", "8", "4"}},
		{"value size", second(Changes[uint32, uint32](ctx, h, 1)), []string{name, "value size", "4", "8"}},
		{"Key value size", second(Key[uint32, [3]uint32](ctx, h, 1)), []string{name, "value size", "12", "8"}},
		{"equal type", second(Map[uint32, uint64](ctx, h, WithEqual(func(a, b int64) bool { return a == b }))), []string{name, "WithEqual", "int64", "uint64"}},
		{"interval", second(Map[uint32, uint64](ctx, h, WithInterval(0))), []string{name, "WithInterval"}},
		{"adaptive", second(Map[uint32, uint64](ctx, h, WithAdaptive(time.Second, time.Millisecond))), []string{name, "WithAdaptive"}},
		{"both", second(Map[uint32, uint64](ctx, h, WithAdaptive(1, 2), WithInterval(1))), []string{name, "WithInterval and WithAdaptive"}},
		{"two bad options", second(Changes[uint32, uint64](ctx, h, 1, WithInterval(-1), WithEqual[uint64](nil))), []string{name, "WithInterval(-1ns)", "WithEqual(nil)"}},
		{"nil map", second(Map[uint32, uint64](ctx, nil)), []string{"watch: nil map"}},
		{"Key initial", second(Key[uint32, uint64](ctx, h, 1, WithInitial())), []string{name, "WithInitial", "Key"}},
		{"Key equal", second(Key[uint32, uint64](ctx, h, 1, WithEqual(func(a, b uint64) bool { return a == b }))), []string{name, "WithEqual", "Key"}},
	} {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, s := range tc.want {
			if !strings.Contains(tc.err.Error(), s) {
				t.Errorf("%s: error %q does not mention %q", tc.name, tc.err, s)
			}
		}
		if strings.Contains(tc.err.Error(), "\n") {
			t.Errorf("%s: error %q is more than one line", tc.name, tc.err)
		}
	}

	for _, spec := range []ebpf.MapSpec{
		{Name: "q", Type: ebpf.Queue, ValueSize: 8, MaxEntries: 8},
		{Name: "s", Type: ebpf.Stack, ValueSize: 8, MaxEntries: 8},
		{Name: "rb", Type: ebpf.RingBuf, MaxEntries: 4096},
		{Name: "perf", Type: ebpf.PerfEventArray},
		{Name: "pcpu", Type: ebpf.PerCPUHash, KeySize: 4, ValueSize: 8, MaxEntries: 8},
	} {
		m := mkMap(t, &spec)
		name := fmt.Sprintf(`watch %s map %q (id %d): `, spec.Type, spec.Name, mapID(t, m))
		for _, err := range []error{
			second(Map[uint32, uint64](ctx, m)),
			second(Changes[uint32, uint64](ctx, m, 1)),
			second(Key[uint32, uint64](ctx, m, 1)),
		} {
			if !errors.Is(err, ErrMapType) || !strings.HasPrefix(fmt.Sprint(err), name) {
				t.Errorf("%s: got %v, want ErrMapType naming the map (%s...)", spec.Type, err, name)
			}
		}
	}
}

func second[T any](_ T, err error) error { return err }

// TestQueueMerge checks the coalescing rules without the kernel.
func TestQueueMerge(t *testing.T) {
	type ch struct {
		kind     Kind
		old, new string // "" = none
	}
	b := func(s string) []byte {
		if s == "" {
			return nil
		}
		return []byte(s)
	}
	for _, tc := range []struct {
		name string
		in   []ch
		want []ch
	}{
		{"added updated", []ch{{Added, "", "1"}, {Updated, "1", "2"}}, []ch{{Added, "", "2"}}},
		{"added deleted", []ch{{Added, "", "1"}, {Deleted, "1", ""}}, nil},
		{"updated updated", []ch{{Updated, "1", "2"}, {Updated, "2", "3"}}, []ch{{Updated, "1", "3"}}},
		{"updated back", []ch{{Updated, "1", "2"}, {Updated, "2", "1"}}, nil},
		{"updated deleted", []ch{{Updated, "1", "2"}, {Deleted, "2", ""}}, []ch{{Deleted, "1", ""}}},
		{"deleted added", []ch{{Deleted, "1", ""}, {Added, "", "2"}}, []ch{{Updated, "1", "2"}}},
		{"deleted added same", []ch{{Deleted, "1", ""}, {Added, "", "1"}}, nil},
		{"cancel then again", []ch{{Added, "", "1"}, {Deleted, "1", ""}, {Added, "", "3"}}, []ch{{Added, "", "3"}}},
		{"initial added deleted", []ch{{Added, "", "1"}, {Deleted, "1", ""}}, []ch{{Deleted, "", ""}}},
		{"initial absent added deleted", []ch{{Deleted, "", ""}, {Added, "", "1"}, {Deleted, "1", ""}}, []ch{{Deleted, "", ""}}},
		{"initial absent added", []ch{{Deleted, "", ""}, {Added, "", "1"}}, []ch{{Added, "", "1"}}},
	} {
		q := newQueue(nil)
		for i, c := range tc.in {
			q.add(snapshotKind(c.kind), []byte("k"), b(c.old), b(c.new))
			if i == 0 && strings.HasPrefix(tc.name, "initial") {
				q.keepInitial()
			}
		}
		var got []ch
		for p := q.front(); p != nil; p = q.front() {
			got = append(got, ch{p.kind, string(p.old), string(p.new)})
			q.pop()
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
		if q.live != 0 || len(q.index) != 0 {
			t.Errorf("%s: queue not empty after draining: live %d, index %d", tc.name, q.live, len(q.index))
		}
	}
}

func TestQueueBounded(t *testing.T) {
	q := newQueue(nil)
	// Keys that keep appearing and vanishing, never read: the queue stays
	// within a small multiple of the keys it holds.
	for i := range 10000 {
		k := []byte{byte(i % 7)}
		q.add(snapshotKind(Added), k, nil, []byte("v"))
		q.add(snapshotKind(Deleted), k, []byte("v"), nil)
		q.add(snapshotKind(Added), []byte{100 + byte(i%3)}, nil, []byte("w"))
		q.add(snapshotKind(Updated), []byte{100 + byte(i%3)}, []byte("w"), []byte("x"))
	}
	if q.live > 3 || len(q.ents) > 64 {
		t.Fatalf("live %d, %d slots; want at most 3 live and a bounded slice", q.live, len(q.ents))
	}
}

func snapshotKind(k Kind) snapshot.Kind { return snapshot.Kind(k) }

func TestChangesArrays(t *testing.T) {
	for _, flags := range []uint32{0, unix.BPF_F_MMAPABLE} {
		t.Run(fmt.Sprintf("flags %#x", flags), func(t *testing.T) {
			m := mkMap(t, &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 16, Flags: flags})
			v, err := Key[uint32, uint64](context.Background(), m, 15)
			if err != nil || v != 0 {
				t.Fatalf("Key of an array entry: got %d, %v; want 0, nil (entries always exist)", v, err)
			}
			w, err := Changes[uint32, uint64](context.Background(), m, 15, WithInterval(forever))
			must(t, err)
			defer closeWatcher(t, w)
			must(t, m.Put(uint32(15), uint64(100)))
			step(t, w)
			if got, want := recv(t, w), (Change[uint64]{New: 100, Present: true}); got != want {
				t.Fatalf("got %+v, want %+v", got, want)
			}
			if _, err := Changes[uint32, uint64](context.Background(), m, 16); err == nil || !strings.Contains(err.Error(), "out of range") {
				t.Fatalf("index 16 of 16: got %v, want out of range", err)
			}
		})
	}
}
