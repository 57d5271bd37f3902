package metrics_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bpfchan/bpfchan/metrics"
	"github.com/bpfchan/bpfchan/pipeline"
	"github.com/bpfchan/bpfchan/pump"
)

// kind is a Handle of any kind, with one counter.
type kind string

func (k kind) MetricKind() string                       { return string(k) }
func (k kind) MetricCounters(emit func(string, uint64)) { emit("n", 1) }

type notAHandle struct{ Stats int }

// TestAddPanics: Add refuses what it cannot export, naming its type.
func TestAddPanics(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    any
		want string
	}{
		{"x", nil, "unknown kind of handle <nil>"},
		{"x", 42, "unknown kind of handle int"},
		{"x", notAHandle{}, "unknown kind of handle metrics_test.notAHandle"},
		{"x", &notAHandle{}, "unknown kind of handle *metrics_test.notAHandle"},
		{"x", (*pump.Source[rec16])(nil), "a nil *pump.Source[github.com/bpfchan/bpfchan/metrics_test.rec16]"},
		{"x", (*pipeline.Group)(nil), "a nil *pipeline.Group"},
		{"", kind("ok"), `Add "" (metrics_test.kind): the name must be non-empty valid UTF-8`},
		{"\xff", kind("ok"), "the name must be non-empty valid UTF-8"},
		{"x", kind("Publisher"), `MetricKind "Publisher" is not snake_case`},
		{"x", kind(""), `MetricKind "" is not snake_case`},
		{"x", kind("pump"), `MetricKind "pump" is bpfchan's own`},
		{"x", kind("stage_extra"), `MetricKind "stage_extra" is bpfchan's own`},
	} {
		got := func() (msg string) {
			defer func() { msg = fmt.Sprint(recover()) }()
			metrics.NewCollector().Add(tc.name, tc.h)
			return "no panic"
		}()
		if !strings.HasPrefix(got, "metrics: Add ") || !strings.Contains(got, tc.want) {
			t.Errorf("Add(%q, %#v): got panic %q, want one containing %q", tc.name, tc.h, got, tc.want)
		}
	}
}

// TestAddReplaceRemove: Add under a name already there replaces it;
// Remove drops it; removing a name never added does nothing.
func TestAddReplaceRemove(t *testing.T) {
	var c metrics.Collector // the zero value is ready to use
	c.Add("a", kind("one"))
	c.Add("b", kind("one"))
	c.Add("a", kind("two"))
	c.Remove("b")
	c.Remove("never")
	want := `
# HELP bpfchan_two_n_total The n count of a two, as its MetricCounters reports it.
# TYPE bpfchan_two_n_total counter
bpfchan_two_n_total{two="a"} 1
`
	if err := testutil.CollectAndCompare(&c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// stages is a Group's Stats, as given: for the collector's own logic.
type stages func() []pipeline.StageStats

func (s stages) Stats() []pipeline.StageStats { return s() }

// TestStageLabels: stages sharing a name get "#2", "#3" in build order, and
// a name that is not valid UTF-8 is made so; a pedantic registry gathers
// them with no collision.
func TestStageLabels(t *testing.T) {
	c := metrics.NewCollector()
	c.Add("g", stages(func() []pipeline.StageStats {
		return []pipeline.StageStats{{Name: "enrich", In: 1}, {Name: "enrich", In: 2}, {Name: "x\xff", In: 3}, {Name: "enrich", In: 4}}
	}))
	want := `
# HELP bpfchan_stage_in_total Values a pipeline stage received from its inputs.
# TYPE bpfchan_stage_in_total counter
bpfchan_stage_in_total{group="g",stage="enrich"} 1
bpfchan_stage_in_total{group="g",stage="enrich#2"} 2
bpfchan_stage_in_total{group="g",stage="enrich#3"} 4
` + "bpfchan_stage_in_total{group=\"g\",stage=\"x\uFFFD\"} 3\n"
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "bpfchan_stage_in_total"); err != nil {
		t.Error(err)
	}
}

// TestBusyNeverDecreases: StageStats.Busy can read lower than a moment
// before; the counter keeps the highest value exported.
func TestBusyNeverDecreases(t *testing.T) {
	busy := []time.Duration{2 * time.Second, time.Second, 3 * time.Second}
	scrape := 0
	c := metrics.NewCollector()
	c.Add("g", stages(func() []pipeline.StageStats {
		return []pipeline.StageStats{{Name: "s", Busy: busy[scrape]}}
	}))
	for i, want := range []float64{2, 2, 3} {
		scrape = i
		if got := testutil.ToFloat64(only(c, "bpfchan_stage_busy_seconds_total")); got != want {
			t.Errorf("scrape %d with Busy %v: got %v, want %v", i, busy[i], got, want)
		}
	}
}
