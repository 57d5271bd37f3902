package ringread_test

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestReviewUserEpollOutMeansAnyByte documents the kernel fact behind the
// user-ring writer's spin (pump's TestReviewUserRingFullWaitSpins): a user
// ring buffer's descriptor reports EPOLLOUT whenever the committed records
// leave ANY byte free (ringbuf_map_poll_user: avail < size), not when the
// record a writer waits to write fits. So arming a one-shot EPOLLOUT
// (EPOLL_CTL_MOD re-polls the file) while the ring is "full" for the next
// record but not to the byte fires at once, every time; only a ring full
// to the byte reports nothing. A waiter must not re-arm EPOLLOUT after a
// wake-up that found no room unless a drain has happened since (or keep
// the descriptor armed edge-triggered, without EPOLLONESHOT, for the whole
// wait, so that only the drains' wake-ups queue events). (Passes: it
// documents the kernel.)
func TestReviewUserEpollOutMeansAnyByte(t *testing.T) {
	for _, tc := range []struct {
		name     string
		size     int  // payload bytes of each record
		wantOut  bool // EPOLLOUT reported once the ring is "full"
		wantFree int
	}{
		{"full to the byte", 8, false, 0},            // 256 records of 16 bytes
		{"16 bytes left, 24 needed", 16, true, 16},   // 170 records of 24 bytes
		{"64 bytes left, 112 needed", 100, true, 64}, // 36 records of 112 bytes
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newUserRing(t, 4096)
			w := openUser(t, m)
			for i := uint64(0); write(t, w, i, tc.size); i++ {
			}
			w.Commit()
			if got := w.Free(); got != tc.wantFree {
				t.Fatalf("Free() = %d, want %d", got, tc.wantFree)
			}
			ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(ep)
			ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLET | unix.EPOLLONESHOT}
			if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, m.FD(), &ev); err != nil {
				t.Fatal(err)
			}
			for arm := range 3 {
				if arm > 0 { // re-arm the one shot, as netpoll's Arm does
					if err := unix.EpollCtl(ep, unix.EPOLL_CTL_MOD, m.FD(), &ev); err != nil {
						t.Fatal(err)
					}
				}
				evs := make([]unix.EpollEvent, 1)
				n, err := unix.EpollWait(ep, evs, 0)
				if err != nil {
					t.Fatal(err)
				}
				if got := n == 1 && evs[0].Events&unix.EPOLLOUT != 0; got != tc.wantOut {
					t.Errorf("arm %d, %d bytes free for a %d-byte record: EPOLLOUT %v, want %v",
						arm, w.Free(), tc.size+8, got, tc.wantOut)
				}
			}
		})
	}
}
