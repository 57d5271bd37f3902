package metrics_test

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bpfchan/bpfchan/internal/testenv"
	"github.com/bpfchan/bpfchan/metrics"
	"github.com/bpfchan/bpfchan/pump"
)

const benchHandles = 1000

// idlePumps starts n ring pumps on rings of their own, registered with a
// new Collector in a new registry. The caller's maps are closed once the
// pumps hold their clones (two descriptors per pump instead of three).
func idlePumps(b *testing.B, n int) (*metrics.Collector, *prometheus.Registry, []*pump.Source[rec16]) {
	testenv.RequireBPF(b)
	c := metrics.NewCollector()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	srcs := make([]*pump.Source[rec16], n)
	for i := range srcs {
		rb, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 4096})
		if err != nil {
			b.Fatal(err)
		}
		src, err := pump.RingBuf[rec16](b.Context(), rb)
		rb.Close()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { src.Close() })
		srcs[i] = src
		c.Add("events"+strconv.Itoa(i), src)
	}
	return c, reg, srcs
}

// BenchmarkScrape: one scrape of 1,000 registered ring pumps (9,000
// series). gather is what an HTTP scrape costs before encoding (the
// registry's Gather: Collect, then checks, sorting and protobufs); collect
// is the Collector's own share. raw-ns is reading the 1,000 handles' Stats
// by hand in the same run, and x-raw the ratio of a gather to it.
func BenchmarkScrape(b *testing.B) {
	c, reg, srcs := idlePumps(b, benchHandles)
	raw := rawStats(srcs)
	b.Run("gather", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := reg.Gather(); err != nil {
				b.Fatal(err)
			}
		}
		reportPerHandle(b, raw)
	})
	b.Run("collect", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ch := make(chan prometheus.Metric, 16*benchHandles) // room for every series: Collect never blocks
			c.Collect(ch)
		}
		reportPerHandle(b, raw)
	})
}

// rawStats times reading every handle's Stats, the floor of any scrape.
func rawStats(srcs []*pump.Source[rec16]) time.Duration {
	const rounds = 100
	var sink uint64
	t0 := time.Now()
	for range rounds {
		for _, s := range srcs {
			sink += s.Stats().Delivered
		}
	}
	_ = sink
	return time.Since(t0) / rounds
}

func reportPerHandle(b *testing.B, raw time.Duration) {
	per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(per/benchHandles, "ns/handle")
	b.ReportMetric(float64(raw.Nanoseconds()), "raw-ns")
	b.ReportMetric(per/float64(raw.Nanoseconds()), "x-raw")
}

// BenchmarkPumpWhileScraped: a ring pump drains a pre-filled ring alone,
// then again while another goroutine scrapes 1,000 handles (this pump among
// them) back to back; the chunks alternate, of 65,536 records at least
// (ns/op is per record whatever b.N). alone-ns/rec and
// scraped-ns/rec are the pump's cost per record in each case, and
// x-alone their ratio; scrapes/s counts the scrapes that finished while
// the pump drained. The pump shares no lock with a scrape (see
// TestStuckScrapeDoesNotStallPump); what a ratio above 1 measures is the
// CPU the scraper takes on this 2-core machine, a worst case, since a
// Prometheus server scrapes every few seconds, not continuously.
func BenchmarkPumpWhileScraped(b *testing.B) {
	_, reg, _ := idlePumps(b, benchHandles-1)
	const ringSize, minChunk = 16 << 20, 1 << 16
	chunk := ringSize / (16 + 8) * 9 / 10
	rb := newMap(b, &ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: ringSize})
	p := ringProducer(b, rb)
	src, err := pump.RingBufBatches[rec16](b.Context(), rb)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	c := metrics.NewCollector()
	reg.MustRegister(c)
	c.Add("measured", src)

	drain := func(n int) time.Duration {
		t0 := time.Now()
		for got := 0; got < n; {
			batch := <-src.C()
			got += len(batch)
			src.Recycle(batch)
		}
		return time.Since(t0)
	}
	var alone, scraped time.Duration
	var recs, scrapes int
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := max(min(chunk, b.N-done), minChunk)
		b.StopTimer()
		produce(b, p, n)
		b.StartTimer()
		alone += drain(n)

		b.StopTimer()
		produce(b, p, n)
		stop, started := make(chan struct{}), make(chan struct{})
		var scraper sync.WaitGroup
		scraper.Go(func() {
			close(started)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := reg.Gather(); err != nil {
					b.Error(err)
					return
				}
				select {
				case <-stop: // finished after the drain: not counted
					return
				default:
					scrapes++
				}
			}
		})
		<-started
		b.StartTimer()
		scraped += drain(n)
		b.StopTimer()
		close(stop)
		scraper.Wait()
		b.StartTimer()
		done += n
		recs += n
	}
	b.StopTimer()
	b.ReportMetric(float64((alone+scraped).Nanoseconds())/float64(2*recs), "ns/op") // per record, however few b.N asked for
	b.ReportMetric(float64(alone.Nanoseconds())/float64(recs), "alone-ns/rec")
	b.ReportMetric(float64(scraped.Nanoseconds())/float64(recs), "scraped-ns/rec")
	b.ReportMetric(float64(scraped)/float64(alone), "x-alone")
	b.ReportMetric(float64(scrapes)/scraped.Seconds(), "scrapes/s")
}
