package pump

import (
	"fmt"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/codec"
	"github.com/bpfchan/bpfchan/internal/producer"
	"github.com/bpfchan/bpfchan/internal/testenv"
)

// countedRing counts the commits that moved the producer position.
type countedRing struct {
	*userRing
	commits int
}

func (c *countedRing) commit() {
	if c.written > 0 {
		c.commits++
	}
	c.userRing.commit()
}

// TestUserRingOneCommitPerRun: the values already waiting in C() when the
// writer takes the first become one run, up to maxRun, and each run is
// handed to the kernel with one store of the producer position. C() is
// filled and closed before the writer starts, so the runs are exact.
func TestUserRingOneCommitPerRun(t *testing.T) {
	testenv.RequireBPF(t)
	for _, tc := range []struct {
		values, commits int
	}{
		{1, 1}, {100, 1}, {maxRun, 1}, {maxRun + 1, 2}, {600, 3},
	} {
		t.Run(fmt.Sprint(tc.values), func(t *testing.T) {
			m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.UserRingbuf, MaxEntries: 1 << 16})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			d, err := producer.NewUserRingDrain(m)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			mi, err := claim(t.Context(), "test writer", m, ebpf.UserRingbuf)
			if err != nil {
				t.Fatal(err)
			}
			s := &Sink[uint64]{c: make(chan uint64, tc.values)}
			u, err := newUserRing("test writer", mi, config{drain: time.Hour}, &s.h.cnt)
			if err != nil {
				mi.m.Close()
				t.Fatal(err)
			}
			enc, err := encoderFor[uint64](config{}, mi.name, func(codec.Codec[uint64]) error { return nil }, func(int) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			c := &countedRing{userRing: u}
			w := &writer[uint64]{s: s, t: c, encode: enc, stop: newLatch()}
			for i := range uint64(tc.values) {
				s.c <- i
			}
			close(s.c)
			s.h.start(t.Context(), w.interrupt, w.run, w.close)
			if err := s.Wait(); err != nil {
				t.Fatal(err)
			}
			if c.commits != tc.commits {
				t.Errorf("%d values in C() committed in %d stores, want %d", tc.values, c.commits, tc.commits)
			}
			if err := d.Run(1); err != nil {
				t.Fatal(err)
			}
			st, err := d.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if n := uint64(tc.values); st.Records != n || st.Disorder != 0 || st.Failed != 0 {
				t.Fatalf("drained %+v, want %d records in order", st, n)
			}
			if got := s.Stats(); got.Delivered != uint64(tc.values) {
				t.Fatalf("stats %+v, want %d delivered", got, tc.values)
			}
		})
	}
}
