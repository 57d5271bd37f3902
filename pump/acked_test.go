package pump_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/chans"
	"github.com/bpfchan/bpfchan/internal/testenv"
	"github.com/bpfchan/bpfchan/maps"
	"github.com/bpfchan/bpfchan/pump"
)

func acked[T any](t *testing.T, ctx context.Context, m *ebpf.Map, opts ...pump.Option) *pump.AckSource[T] {
	t.Helper()
	s, err := pump.RingBufAcked[T](ctx, m, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// ackedNoLook is acked whose pump never looks at the ring by itself (its
// first look after parking and its drain interval are an hour): only an
// Ack or the kernel's wake-up can make it look.
func ackedNoLook[T any](t *testing.T, ctx context.Context, m *ebpf.Map, opts ...pump.Option) *pump.AckSource[T] {
	t.Helper()
	s, err := pump.RingBufAckedFirstLook[T](ctx, m, time.Hour, append(opts, pump.WithDrainInterval(time.Hour))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// recvRecords receives batches until it holds n records.
func recvRecords[T any](t *testing.T, s *pump.AckSource[T], n int) []pump.Record[T] {
	t.Helper()
	var got []pump.Record[T]
	for len(got) < n {
		b, ok := recv(t, s.C())
		if !ok {
			t.Fatalf("C() closed after %d records, want %d", len(got), n)
		}
		got = append(got, b...)
	}
	if len(got) != n {
		t.Fatalf("got %d records, want %d", len(got), n)
	}
	return got
}

func checkIdentity(t *testing.T, st pump.Stats) {
	t.Helper()
	if st.Received != st.Delivered+st.DecodeErrors || st.Dropped != 0 {
		t.Fatalf("stats %+v: want Received == Delivered + DecodeErrors and nothing dropped", st)
	}
}

// TestAckedRedelivery: what is delivered but not acknowledged comes again,
// with the same positions, to the next source on the ring, after Close and
// after a cancel; what is acknowledged does not.
func TestAckedRedelivery(t *testing.T) {
	rb := newRing(t, 1<<16)
	p := ringProducer(t, rb, 16)
	run(t, p, 10)
	s1 := acked[rec16](t, t.Context(), rb)
	first := recvRecords(t, s1, 10)
	for i, r := range first {
		if r.Value.Seq != uint64(i) || (i > 0 && r.Pos <= first[i-1].Pos) {
			t.Fatalf("record %d: seq %d at %d, want seq %d at an increasing position", i, r.Value.Seq, r.Pos, i)
		}
	}
	if err := s1.Ack(first[3].Pos); err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	if st := s1.Stats(); st.Acked != 4 || st.Delivered != 10 {
		t.Fatalf("stats %+v, want 10 delivered, 4 acked", st)
	}
	checkIdentity(t, s1.Stats())

	ctx, cancel := context.WithCancel(t.Context())
	s2 := acked[rec16](t, ctx, rb)
	if id1, id2 := s1.RingID(), s2.RingID(); id1 != id2 {
		t.Fatalf("RingID of the second reader %q, want the first's %q: one ring, one identity", id2, id1)
	}
	again := recvRecords(t, s2, 6)
	for i, r := range again {
		if r != first[4+i] {
			t.Fatalf("redelivered record %d: %+v, want %+v", i, r, first[4+i])
		}
	}
	cancel()
	if err := s2.Wait(); err != context.Canceled {
		t.Fatalf("Wait after cancel: %v", err)
	}
	checkIdentity(t, s2.Stats())

	s3 := acked[rec16](t, t.Context(), rb)
	third := recvRecords(t, s3, 6)
	if third[0] != first[4] {
		t.Fatalf("after a cancel the first record is %+v, want %+v", third[0], first[4])
	}
}

// TestAckedRingFills: the producer's reserve fails while the ring is full of
// unacknowledged records, and succeeds once an Ack gives space back.
func TestAckedRingFills(t *testing.T) {
	rb := newRing(t, 4096)
	p := ringProducer(t, rb, 248) // 15 records of 256 bytes fill a page
	s := acked[rec248](t, t.Context(), rb)
	run(t, p, 15)
	recs := recvRecords(t, s, 15)
	run(t, p, 1)
	if _, lost, _ := p.Counts(); lost != 1 {
		t.Fatalf("the producer lost %d records, want 1: unacknowledged records must keep their space", lost)
	}
	if err := s.Ack(recs[0].Pos); err != nil {
		t.Fatal(err)
	}
	run(t, p, 1)
	if _, lost, _ := p.Counts(); lost != 1 {
		t.Fatalf("the producer lost %d records, want still 1 after an Ack", lost)
	}
	next := recvRecords(t, s, 1)
	if next[0].Value.Seq != 16 {
		t.Fatalf("got seq %d, want 16 (15 was lost)", next[0].Value.Seq)
	}
	a, produced := s.Positions()
	if want := recs[1].Pos; a != want || produced-a != 15*256 {
		t.Fatalf("positions %d, %d: want acked %d and 15 records of 256 bytes outstanding", a, produced, want)
	}
}

// TestAckWakes: with acknowledgements outstanding the kernel sends no
// wake-up for a new record (it is not at the published position); the Ack
// is what makes the pump look. The pump never looks by itself (its first
// look after parking and its drain interval are an hour), so only the Ack
// can have woken it.
func TestAckWakes(t *testing.T) {
	rb := newRing(t, 4096)
	p := ringProducer(t, rb, 16)
	s := ackedNoLook[rec16](t, t.Context(), rb)
	run(t, p, 1)
	r := recvRecords(t, s, 1)
	waitParked(t)
	run(t, p, 1) // not at the published position: no wake-up
	if err := s.Ack(r[0].Pos); err != nil {
		t.Fatal(err)
	}
	b, ok := recvWithin(s)
	if !ok {
		t.Fatalf("a record committed while the previous one was unacknowledged: not delivered within %v of the Ack (the Ack did not wake the pump)", reviewBound)
	}
	if b[0].Value.Seq != 1 {
		t.Fatalf("got seq %d, want 1", b[0].Value.Seq)
	}
}

// TestAckRefusals: Ack of a position never delivered, of one that is not a
// record's, of an old one, and after the source stopped.
func TestAckRefusals(t *testing.T) {
	rb := newRing(t, 4096)
	p := ringProducer(t, rb, 16)
	s := acked[rec16](t, t.Context(), rb, pump.WithBatch(1, 0))
	if err := s.Ack(0); err == nil || !strings.Contains(err.Error(), "delivered") {
		t.Fatalf("Ack before any delivery: %v, want an error", err)
	}
	run(t, p, 2)
	recs := recvRecords(t, s, 2)
	for _, tc := range []struct {
		pos  uint64
		want string
	}{
		{recs[0].Pos + 8, "not the position"}, // inside a record
		{recs[1].Pos + 24, "no record"},       // past the last record produced
	} {
		if err := s.Ack(tc.pos); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "RingBuf map") {
			t.Errorf("Ack(%d): %v, want an error saying %q and naming the map", tc.pos, err, tc.want)
		}
	}
	if err := s.Ack(recs[1].Pos); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(recs[0].Pos); err != nil {
		t.Fatalf("Ack of an older position: %v, want nil", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(recs[1].Pos); err != nil {
		t.Fatalf("Ack after Close of a position already acknowledged: %v, want nil", err)
	}
	if err := s.Ack(recs[1].Pos + 24); !errors.Is(err, maps.ErrClosed) {
		t.Fatalf("Ack after Close: %v, want maps.ErrClosed", err)
	}
	if st := s.Stats(); st.Acked != 2 {
		t.Fatalf("acked %d, want 2", st.Acked)
	}
}

// TestAckedStatsFinalWhenCCloses: rule 5 for Acked. Once C() is closed
// (after Close, or after a cancel) the source has stopped: an Ack returns
// what Ack's doc says for a stopped source (maps.ErrClosed, nil for a
// position an earlier Ack covered) and changes nothing, so the Acked a
// receiver reads when its range over C() ends is final. The first Ack is
// made the moment the range ends, while the pump may still be cleaning up.
func TestAckedStatsFinalWhenCCloses(t *testing.T) {
	for _, how := range []string{"Close", "cancel"} {
		t.Run(how, func(t *testing.T) {
			rb := newRing(t, 4096)
			p := ringProducer(t, rb, 16)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			s := acked[rec16](t, ctx, rb, pump.WithBatch(1, 0))
			run(t, p, 3)
			recs := recvRecords(t, s, 3)
			if err := s.Ack(recs[0].Pos); err != nil {
				t.Fatal(err)
			}
			closed := make(chan error, 1)
			go func() {
				if how == "cancel" {
					cancel()
					closed <- nil
					return
				}
				closed <- s.Close()
			}()
			for {
				if _, ok := recv(t, s.C()); !ok {
					break
				}
			}
			final := s.Stats().Acked
			for _, tc := range []struct {
				pos  uint64
				want error
			}{
				{recs[2].Pos, maps.ErrClosed}, // delivered, not acknowledged
				{recs[1].Pos, maps.ErrClosed},
				{recs[0].Pos, nil}, // acknowledged before the stop
			} {
				if err := s.Ack(tc.pos); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
					t.Errorf("Ack(%d) after C() closed: %v, want %v", tc.pos, err, tc.want)
				}
			}
			if err := <-closed; err != nil {
				t.Fatal(err)
			}
			s.Wait()
			if got := s.Stats().Acked; final != 1 || got != final {
				t.Fatalf("Acked when C() closed %d, after further Acks %d: want 1 both times", final, got)
			}
			if a, _ := s.Positions(); a != recs[1].Pos {
				t.Fatalf("published consumer position %d after the stop, want %d (the end of the first record)", a, recs[1].Pos)
			}
		})
	}
}

// TestAckedWrongSize: a record of the wrong size between acknowledged ones
// is counted, and released with the prefix around it.
func TestAckedWrongSize(t *testing.T) {
	rb := newRing(t, 4096)
	good, bad := ringProducer(t, rb, 16), ringProducer(t, rb, 24)
	run(t, good, 2)
	run(t, bad, 1)
	run(t, good, 2)
	s := acked[rec16](t, t.Context(), rb)
	recs := recvRecords(t, s, 4)
	if err := s.Ack(recs[3].Pos); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.DecodeErrors != 1 || st.Acked != 4 || st.Received != 5 {
		t.Fatalf("stats %+v, want 5 received, 1 decode error, 4 acked", st)
	}
	checkIdentity(t, st)
	if a, produced := s.Positions(); a != produced {
		t.Fatalf("positions %d, %d: the bad record was not released with the prefix", a, produced)
	}
}

// TestAckedBadInput: overflow policies other than Block and a second reader.
func TestAckedBadInput(t *testing.T) {
	rb := newRing(t, 4096)
	_, err := pump.RingBufAcked[rec16](t.Context(), rb, pump.WithBuffer(4), pump.WithOverflow(chans.DropNewest))
	if !errors.Is(err, pump.ErrOption) {
		t.Fatalf("DropNewest: %v, want ErrOption", err)
	}
	s := acked[rec16](t, t.Context(), rb)
	for name, open := range map[string]func() error{
		"RingBufAcked": func() error { _, err := pump.RingBufAcked[rec16](t.Context(), rb); return err },
		"RingBuf":      func() error { _, err := pump.RingBuf[rec16](t.Context(), rb); return err },
	} {
		if err := open(); !errors.Is(err, pump.ErrBusy) {
			t.Errorf("%s beside an AckSource: %v, want ErrBusy", name, err)
		}
	}
	if id := s.RingID(); !strings.Contains(id, ":") {
		t.Errorf("RingID %q: want the boot ID and the map's ID", id)
	}
}

// childEnv names the pinned ring a re-executed test binary reads as the
// child of TestAckedSurvivesKill.
const childEnv = "BPFCHAN_ACKED_CHILD"

// TestAckedSurvivesKill: a child process reading a pinned ring with
// RingBufAcked is SIGKILLed while it holds delivered, unacknowledged
// records. The parent's next RingBufAcked gets exactly those, then the
// rest, with no gap and no duplicate.
func TestAckedSurvivesKill(t *testing.T) {
	dir := testenv.BPFFS(t)
	rb := newRing(t, 1<<16)
	pin := filepath.Join(dir, "ring")
	if err := rb.Pin(pin); err != nil {
		t.Fatal(err)
	}
	p := ringProducer(t, rb, 16)
	run(t, p, 100)

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+pin)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var nAcked, delivered uint64
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if n, _ := fmt.Sscanf(sc.Text(), "acked %d delivered %d", &nAcked, &delivered); n == 2 {
			break
		}
	}
	if delivered == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the child reported nothing: %v", sc.Err())
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	run(t, p, 50)
	s := acked[rec16](t, t.Context(), rb)
	recs := recvRecords(t, s, 150-int(nAcked))
	for i, r := range recs {
		if want := nAcked + uint64(i); r.Value.Seq != want {
			t.Fatalf("record %d after the kill: seq %d, want %d (acked up to %d, delivered up to %d)", i, r.Value.Seq, want, nAcked-1, delivered-1)
		}
	}
}

// ackedChild is the child of TestAckedSurvivesKill, run by TestMain in a
// re-executed test binary: it reads the pinned ring, acknowledges the
// first 30 of the 100 records, says so, and waits to be killed.
func ackedChild(pin string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "acked child:", err)
		return 1
	}
	m, err := ebpf.LoadPinnedMap(pin, nil)
	if err != nil {
		return fail(err)
	}
	s, err := pump.RingBufAcked[rec16](context.Background(), m)
	if err != nil {
		return fail(err)
	}
	var recs []pump.Record[rec16]
	for len(recs) < 100 {
		b, ok := <-s.C()
		if !ok {
			return fail(s.Wait())
		}
		recs = append(recs, b...)
	}
	if err := s.Ack(recs[29].Pos); err != nil {
		return fail(err)
	}
	fmt.Println("acked " + strconv.Itoa(30) + " delivered " + strconv.Itoa(len(recs)))
	select {} // until SIGKILL
}
