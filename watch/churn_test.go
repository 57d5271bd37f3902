package watch

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/producer"
)

// fill puts n entries k → k into m with batch updates.
func fill(tb testing.TB, m *ebpf.Map, n uint32) {
	tb.Helper()
	keys := make([]uint32, n)
	vals := make([]uint64, n)
	for i := range n {
		keys[i], vals[i] = i, uint64(i)
	}
	if _, err := m.BatchUpdate(keys, vals, nil); err != nil {
		tb.Fatal(err)
	}
}

// contents reads m with cilium/ebpf's batch lookup: the ground truth.
func contents(tb testing.TB, m *ebpf.Map) map[uint32]uint64 {
	tb.Helper()
	out := make(map[uint32]uint64)
	keys := make([]uint32, 4096)
	vals := make([]uint64, 4096)
	var cursor ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookup(&cursor, keys, vals, nil)
		for i := range n {
			out[keys[i]] = vals[i]
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return out
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// view is a consumer's picture of a map, built from events alone. apply
// checks that every event starts from the state the view holds.
type view map[uint32]uint64

func (v view) apply(e Event[uint32, uint64]) error {
	old, ok := v[e.Key]
	switch {
	case e.Kind == Added && ok:
		return errors.New("added a key the view holds: " + e.String())
	case e.Kind != Added && !ok:
		return errors.New("changed a key the view lacks: " + e.String())
	case e.Kind != Added && old != e.Old:
		return errors.New("old value differs from the view's: " + e.String())
	}
	if e.Kind == Deleted {
		delete(v, e.Key)
	} else {
		v[e.Key] = e.New
	}
	return nil
}

// TestMapConvergesUnderChurn runs BPF programs and Go writers against a full
// 64k-entry hash map while a consumer applies the watcher's events; once the
// writers stop, the consumer's view must equal the map.
func TestMapConvergesUnderChurn(t *testing.T) {
	const entries = 1 << 16
	m := hash(t, entries)
	fill(t, m, entries)

	w, err := Map[uint32, uint64](context.Background(), m, WithInitial(), WithAdaptive(time.Millisecond, 20*time.Millisecond))
	must(t, err)
	defer closeWatcher(t, w)

	v := view{}
	var received uint64
	stopConsumer := make(chan struct{})
	var consumer sync.WaitGroup
	consumer.Go(func() {
		for {
			select {
			case e := <-w.C():
				received++
				if err := v.apply(e); err != nil {
					t.Error(err)
					return
				}
			case <-stopConsumer:
				return
			}
		}
	})

	// Churn: kernel-atomic adds on a few keys, and Go writers deleting,
	// re-creating and rewriting others.
	var churn sync.WaitGroup
	for _, k := range []uint32{1, 2, 3, 40000} {
		p, err := producer.NewHashAdd(m, k, int32(k%5+1))
		must(t, err)
		defer p.Close()
		churn.Go(func() {
			for range 20 {
				if err := p.Run(5000); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for g := range uint32(2) {
		churn.Go(func() {
			for i := range uint32(20000) {
				k := 100 + g*10000 + i%500
				var err error
				switch i % 3 {
				case 0:
					err = m.Delete(k)
				case 1:
					err = m.Put(k, uint64(i))
				case 2:
					err = m.Put(k+1000, uint64(i)*7)
				}
				if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
					t.Error(err)
					return
				}
			}
		})
	}
	churn.Wait()
	close(stopConsumer)
	consumer.Wait()
	if t.Failed() {
		return
	}

	// The map is quiet now: one poll settles every change, and the test
	// takes the rest of the events itself.
	step(t, w)
	s := w.Stats()
	for target := s.Events + uint64(s.Pending); received < target; received++ {
		must(t, v.apply(recv(t, w)))
	}
	if want := contents(t, m); !maps.Equal(map[uint32]uint64(v), want) {
		diff := 0
		for k, x := range want {
			if y, ok := v[k]; !ok || x != y {
				diff++
			}
		}
		t.Fatalf("view has %d entries, map %d; %d entries differ", len(v), len(want), diff)
	}
	s = w.Stats()
	if s.Changes != s.Events+s.Coalesced+uint64(s.Pending)+s.DecodeErrors {
		t.Fatalf("stats do not add up: %+v", s)
	}
	t.Logf("%d polls (%v each), %d changes, %d events, %d coalesced", s.Polls, s.PerPoll(), s.Changes, s.Events, s.Coalesced)
}
