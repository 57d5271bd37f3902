package metrics_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/bpfchan/bpfchan/metrics"
	"github.com/bpfchan/bpfchan/pipeline"
	"github.com/bpfchan/bpfchan/pump"
)

// TestHTTPScrape: a real scrape over loopback while a ring pump runs shows
// its delivered counter growing to what the kernel produced.
func TestHTTPScrape(t *testing.T) {
	rb := newRing(t)
	p := ringProducer(t, rb)
	src, err := pump.RingBuf[rec16](bg, rb)
	if err != nil {
		t.Fatal(err)
	}
	var consumer sync.WaitGroup
	consumer.Go(func() { drain(src.C()) })
	defer consumer.Wait()
	defer closeAll(t, src)

	reg := prometheus.NewRegistry()
	c := metrics.NewCollector()
	reg.MustRegister(c)
	c.Add("events", src)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	const series = `bpfchan_pump_delivered_total{pump="events"}`
	before := scrape(t, client, srv.URL, series)
	const n = 1000
	produce(t, p, n)
	deadline := time.Now().Add(failAfter) // a failure bound, not a timing assertion
	got := before
	for got < before+n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v after %v, want %v", series, got, failAfter, before+n)
		}
		got = scrape(t, client, srv.URL, series)
	}
	if got != before+n {
		t.Errorf("%s: got %v, want %v", series, got, before+n)
	}
}

// scrape GETs url and returns the value of series in the response.
func scrape(t *testing.T, client *http.Client, url, series string) float64 {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("GET %s: %s: %v", url, sc.Text(), err)
			}
			return f
		}
	}
	t.Fatalf("GET %s: no %s in the response (%v)", url, series, sc.Err())
	return 0
}

// TestStuckScrapeDoesNotStallPump: a scrape stuck half-way (its reader
// gone) holds no lock a pump, Add or Remove needs: the pump delivers
// records meanwhile, and its figures are read again by the next scrape.
func TestStuckScrapeDoesNotStallPump(t *testing.T) {
	rb := newRing(t)
	p := ringProducer(t, rb)
	src, err := pump.RingBuf[rec16](bg, rb)
	if err != nil {
		t.Fatal(err)
	}
	c := metrics.NewCollector()
	c.Add("events", src)
	ch := make(chan prometheus.Metric)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		c.Collect(ch)
	}()
	<-ch // the scrape has read the pump's Stats and waits to send the next series

	produce(t, p, 100)
	recvN(t, src.C(), 100)
	c.Add("again", src)
	c.Remove("again")
	closeAll(t, src)
	for done := false; !done; {
		select {
		case <-ch:
		case <-collected:
			done = true
		}
	}
	if got := testutil.ToFloat64(only(c, `bpfchan_pump_delivered_total`)); got != 100 {
		t.Errorf("delivered: got %v, want 100", got)
	}
}

// only passes on the series of one metric name of a collector.
func only(c prometheus.Collector, name string) prometheus.Collector { return filter{c, name} }

type filter struct {
	c    prometheus.Collector
	name string
}

func (f filter) Describe(chan<- *prometheus.Desc) {}
func (f filter) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() { f.c.Collect(all); close(all) }()
	for m := range all {
		if strings.Contains(m.Desc().String(), `"`+f.name+`"`) {
			ch <- m
		}
	}
}

// TestConcurrentScrapes: scrapes from two goroutines while a third adds and
// removes handles and the test stops running pumps; run under -race. A
// handle nobody touches keeps counters that never go down.
func TestConcurrentScrapes(t *testing.T) {
	const pumps, scrapes = 4, 100
	c := metrics.NewCollector()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	var srcs []*pump.Source[rec16]
	var running sync.WaitGroup
	for i := range pumps {
		rb := newRing(t)
		p := ringProducer(t, rb)
		src, err := pump.RingBuf[rec16](bg, rb)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, src)
		running.Go(func() { drain(src.C()) })
		produce(t, p, 50)
		c.Add(fmt.Sprintf("pump%d", i), src)
	}
	c.Add("steady", srcs[0])
	g, _ := pipeline.New(bg)
	pipeline.ForEach(g, pipeline.FromSeq(g, func(yield func(int) bool) {
		for i := range 1000 {
			if !yield(i) {
				return
			}
		}
	}), func(context.Context, int) error { return nil }, pipeline.Name("count"))

	halfway := make(chan struct{})
	var wg sync.WaitGroup
	for s := range 2 {
		wg.Go(func() {
			var last float64
			for i := range scrapes {
				if s == 0 && i == scrapes/2 {
					close(halfway)
				}
				mfs, err := reg.Gather()
				if err != nil {
					t.Errorf("scraper %d, scrape %d: %v", s, i, err)
					return
				}
				v, ok := value(mfs, "bpfchan_pump_delivered_total", "steady")
				if !ok || v < last {
					t.Errorf("scraper %d, scrape %d: steady delivered %v (found %v), was %v", s, i, v, ok, last)
				}
				last = v
			}
		})
	}
	wg.Go(func() {
		for i := range 2 * scrapes {
			name := fmt.Sprintf("pump%d", i%pumps)
			c.Remove(name)
			c.Add("group", g)
			c.Add(name, srcs[(i+1)%pumps])
			c.Add("fleet", &publisher{published: uint64(i)})
			c.Remove("group")
		}
	})
	<-halfway
	for _, src := range srcs {
		closeAll(t, src)
	}
	if err := g.Wait(); err != nil {
		t.Error(err)
	}
	wg.Wait()
	running.Wait()
}

// value returns the value of metric name labelled label in mfs.
func value(mfs []*dto.MetricFamily, name, label string) (float64, bool) {
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetCounter().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// TestStageBuffered: the gauge of values in a stage's output buffers is
// exported exactly when pipeline.StageStats reports them.
func TestStageBuffered(t *testing.T) {
	g, _ := pipeline.New(bg)
	in := make(chan int)
	out := pipeline.Map(g, in, func(_ context.Context, v int) (int, error) { return v, nil }, pipeline.Name("hold"), pipeline.Buffer(8))
	for i := range 3 {
		in <- i
	}
	close(in)
	if err := g.Wait(); err != nil { // the three values wait in out's buffer
		t.Fatal(err)
	}
	c := metrics.NewCollector()
	c.Add("g", g)
	_, has := reflect.TypeFor[pipeline.StageStats]().FieldByName("Buffered")
	want := ""
	if has {
		want = `
# HELP bpfchan_stage_buffered Values waiting in the stage's output buffers.
# TYPE bpfchan_stage_buffered gauge
bpfchan_stage_buffered{group="g",stage="hold"} 3
`
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "bpfchan_stage_buffered"); err != nil {
		t.Errorf("StageStats has Buffered: %v; %v", has, err)
	}
	drain(out)
}

// TestDependency: the Prometheus client is a dependency of metrics alone.
func TestDependency(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to list dependencies: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", "../pump", "../watch", "../pipeline", "../chans", "../maps").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for dep := range strings.FieldsSeq(string(out)) {
		if strings.Contains(dep, "prometheus") {
			t.Errorf("go list -deps ./pump ./watch ./pipeline ./chans ./maps: got %s, want no Prometheus package", dep)
		}
	}
}
