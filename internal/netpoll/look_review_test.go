package netpoll_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfchan/bpfchan/internal/bpfcall"
	"github.com/bpfchan/bpfchan/internal/netpoll"
	"github.com/bpfchan/bpfchan/internal/testenv"
)

// BenchmarkReviewArmBesideQueueLooks measures what one Arm+Disarm (the
// wait bookkeeping of every ring pump, and what Ack's Wake takes) costs
// while n idle queue pollers are registered. Their Ready is a real peek of
// an empty queue (one bpf(2) call), and the loop calls every Ready with
// the package's one mutex held, so each sweep of n peeks blocks every
// Arm, Disarm and Wake in the process for its whole length. Reported: the
// median, p99 and worst Arm+Disarm in µs, and the share of them delayed
// by more than 100 µs (a caller is delayed once per sweep it meets, so
// the worst case is the figure: the sweep's length). The pollers' period
// is 100 ms, the default maximum an idle queue pump backs off to. Run it
// long enough to meet several sweeps: -benchtime 5000000x.
func BenchmarkReviewArmBesideQueueLooks(b *testing.B) {
	testenv.RequireBPF(b)
	q, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Queue, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	for _, n := range []int{0, 5000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			var regs []*netpoll.Reg
			buf := make([]byte, 8)
			for range n {
				r, err := netpoll.Register(netpoll.Spec{FD: -1, Ready: func() bool {
					return bpfcall.Peek(q.FD(), buf) == 0
				}, Min: 100 * time.Millisecond, Max: 100 * time.Millisecond})
				if err != nil {
					b.Fatal(err)
				}
				regs = append(regs, r)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			for _, r := range regs {
				go func() { r.Wait(ctx, nil, true); done <- struct{}{} }()
			}
			me, err := netpoll.Register(netpoll.Spec{FD: -1, Min: time.Hour, Max: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			d := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				me.Arm(true)
				me.Disarm()
				d = append(d, time.Since(t0))
			}
			b.StopTimer()
			cancel()
			for range regs {
				<-done
			}
			for _, r := range regs {
				r.Close()
			}
			me.Close()
			slices.Sort(d)
			slow := 0
			for _, x := range d {
				if x > 100*time.Microsecond {
					slow++
				}
			}
			us := func(x time.Duration) float64 { return float64(x) / 1e3 }
			b.ReportMetric(us(d[len(d)/2]), "p50-µs")
			b.ReportMetric(us(d[len(d)*99/100]), "p99-µs")
			b.ReportMetric(us(d[len(d)-1]), "max-µs")
			b.ReportMetric(100*float64(slow)/float64(len(d)), "%>100µs")
		})
	}
}
