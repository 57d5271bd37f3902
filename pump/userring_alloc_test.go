package pump_test

import (
	"testing"

	"github.com/bpfchan/bpfchan/pump"
)

// TestUserRingNoAllocs: once running, a UserRingBuf allocates nothing per
// value, for a fixed-size T (written from T's own memory) and for []byte
// (encoded through a buffer the pump reuses). The ring holds every record,
// so no drain is needed.
func TestUserRingNoAllocs(t *testing.T) {
	t.Run("rec16", func(t *testing.T) {
		w, err := pump.UserRingBuf[rec16](t.Context(), newUserRing(t, 1<<20))
		if err != nil {
			t.Fatal(err)
		}
		var v rec16
		allocs := testing.AllocsPerRun(10_000, func() { v.Seq++; w.C() <- v })
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if allocs != 0 {
			t.Fatalf("%v allocations per value, want 0", allocs)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		w, err := pump.UserRingBuf[[]byte](t.Context(), newUserRing(t, 1<<20))
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 40)
		allocs := testing.AllocsPerRun(10_000, func() { w.C() <- b })
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if allocs != 0 {
			t.Fatalf("%v allocations per value, want 0", allocs)
		}
	})
}
