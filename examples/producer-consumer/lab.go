package main

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/producer"
	bpfmaps "github.com/bpfchan/bpfchan/maps"
)

// statNames are the keys of the stats map: one counter per category, and
// the total (the lab's create-stats-refs).
var statNames = []string{"syscall", "network", "filesystem", "process", "total"}

// lab holds the kernel objects: the ring buffer and the BPF program writing
// raw events into it, the two queues between the stages, the stats map.
type lab struct {
	rb      *ebpf.Map
	prod    *producer.Producer
	q1      *bpfmaps.Queue[Filtered]
	q2      *bpfmaps.Queue[Enriched]
	stats   *bpfmaps.Map[statKey, uint64]
	entries map[string]*bpfmaps.Entry[statKey, uint64]
}

// newLab creates the maps (the lab's sizes unless cfg says otherwise) and
// loads the producer. Every stats counter starts at zero.
func newLab(cfg config) (_ *lab, err error) {
	l := &lab{entries: map[string]*bpfmaps.Entry[statKey, uint64]{}}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if l.rb, err = bpfmaps.NewRingBuf(cfg.ring); err != nil {
		return nil, fmt.Errorf("create the ring buffer: %w", err)
	}
	if l.prod, err = producer.NewRing(l.rb, 16); err != nil {
		return nil, fmt.Errorf("load the BPF producer: %w", err)
	}
	if l.q1, err = bpfmaps.NewQueue[Filtered](uint32(cfg.queue)); err != nil {
		return nil, fmt.Errorf("create queue 1: %w", err)
	}
	if l.q2, err = bpfmaps.NewQueue[Enriched](uint32(cfg.queue)); err != nil {
		return nil, fmt.Errorf("create queue 2: %w", err)
	}
	if l.stats, err = bpfmaps.NewHash[statKey, uint64](1000); err != nil {
		return nil, fmt.Errorf("create the stats map: %w", err)
	}
	for _, n := range statNames {
		e := l.stats.Entry(key(n))
		if err := e.Store(0); err != nil {
			return nil, fmt.Errorf("initialise the %s counter: %w", n, err)
		}
		l.entries[n] = e
	}
	return l, nil
}

// Close unloads the producer and closes the maps.
func (l *lab) Close() error {
	var errs []error
	if l.prod != nil {
		errs = append(errs, l.prod.Close())
	}
	if l.rb != nil {
		errs = append(errs, l.rb.Close())
	}
	if l.q1 != nil {
		errs = append(errs, l.q1.Close())
	}
	if l.q2 != nil {
		errs = append(errs, l.q2.Close())
	}
	if l.stats != nil {
		errs = append(errs, l.stats.Close())
	}
	return errors.Join(errs...)
}

// counters reads the stats map.
func (l *lab) counters() (map[string]uint64, error) {
	c := map[string]uint64{}
	for _, n := range statNames {
		v, err := l.entries[n].Load()
		if err != nil {
			return nil, fmt.Errorf("load the %s counter: %w", n, err)
		}
		c[n] = v
	}
	return c, nil
}
