package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// view renders the live figures: a redrawn screen on a terminal, one plain
// line per refresh otherwise.
type view struct {
	w        io.Writer
	tty      bool
	interval time.Duration
	cfg      config
	tr       *tracer
	t        *tally
	figures  func() flowFigures
	// metricsURL is where -metrics serves, shown in the header; "": none.
	metricsURL string

	start    time.Time
	last     time.Time
	lastRecv uint64
	rate     float64
}

func newView(w io.Writer, cfg config, tr *tracer, t *tally, figures func() flowFigures) *view {
	v := &view{w: w, tty: isTerminal(w), cfg: cfg, tr: tr, t: t, figures: figures}
	v.interval = cfg.interval
	if v.interval == 0 {
		v.interval = time.Second
		if v.tty {
			v.interval = 250 * time.Millisecond
		}
	}
	v.start = time.Now()
	v.last = v.start
	if v.tty {
		fmt.Fprint(w, "\x1b[2J") // clear the screen once; frames redraw from the top
	}
	return v
}

// isTerminal reports whether w is a character device other than /dev/null,
// on a terminal that understands escape sequences.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}

// render draws one frame.
func (v *view) render(now time.Time) {
	recv := v.t.received.Load()
	if dt := now.Sub(v.last).Seconds(); dt > 0 {
		v.rate = float64(recv-v.lastRecv) / dt
	}
	v.last, v.lastRecv = now, recv
	f := v.figures()
	ringFull, uncounted, _ := v.tr.kernelDrops() // a failed read shows zeros; the summary reports errors
	dropped := ringFull + f.Ring.Dropped + f.Ring.DecodeErrors + f.Sink.Dropped + f.Queue.Dropped
	// Between the filter and the worker: the BPF queue, plus the few values
	// in channel buffers. (pump.Sink's Stats are only published when it
	// stops, so enqueued is not shown live.)
	important, worked := v.t.important.Load(), v.t.worked.Load()
	depth := important - min(worked, important)
	elapsed := fmt.Sprintf("%.1fs", now.Sub(v.start).Seconds())
	if v.tty {
		v.frame(elapsed, recv, dropped, ringFull, uncounted, depth, f)
	} else {
		v.line(elapsed, recv, dropped, depth)
	}
}

func (v *view) frame(elapsed string, recv, dropped, ringFull, uncounted, depth uint64, f flowFigures) {
	var b strings.Builder
	nl := func(format string, args ...any) {
		fmt.Fprintf(&b, format, args...)
		b.WriteString("\x1b[K\n") // clear the rest of the line
	}
	b.WriteString("\x1b[H") // cursor home
	until := "Ctrl-C to stop"
	if v.cfg.duration > 0 {
		until = fmt.Sprintf("stops after %s, or Ctrl-C", v.cfg.duration)
	}
	if v.metricsURL != "" {
		until += ", metrics at " + v.metricsURL
	}
	nl("bpfchan pipeline  %s  (%s)", elapsed, until)
	nl("sys_enter -> ring buffer -> count -> filter -> BPF queue -> worker")
	nl("")
	nl("  events/s   %12s", num(uint64(v.rate)))
	nl("  received   %12s   counted %s", num(recv), num(v.t.counted.Load()))
	nl("  dropped    %12s   ring full %s, uncounted %s, pump %s, queue %s",
		num(dropped), num(ringFull), num(uncounted), num(f.Ring.Dropped+f.Ring.DecodeErrors), num(f.Sink.Dropped))
	nl("  important  %12s   worked %s, queue depth %s",
		num(v.t.important.Load()), num(v.t.worked.Load()), num(depth))
	nl("")
	top, total := v.t.topSyscalls(8)
	nl("  top syscalls (kernel counts, all processes but this one: %s)", num(total))
	for _, c := range top {
		bar := 0
		if total > 0 {
			bar = int(40 * c.Count / total)
		}
		nl("    %-18s %12s  %s", c.Name, num(c.Count), strings.Repeat("#", bar))
	}
	for i := len(top); i < 8; i++ {
		nl("")
	}
	nl("")
	nl("  important events (%s), latest last", v.cfg.names)
	recent := v.t.recentEvents()
	for _, l := range recent {
		nl("    %s", l)
	}
	for i := len(recent); i < recentLines; i++ {
		nl("")
	}
	b.WriteString("\x1b[J") // clear below
	io.WriteString(v.w, b.String())
}

func (v *view) line(elapsed string, recv, dropped, depth uint64) {
	var b strings.Builder
	fmt.Fprintf(&b, "t=%s events/s=%d received=%d counted=%d dropped=%d important=%d worked=%d depth=%d",
		elapsed, uint64(v.rate), recv, v.t.counted.Load(), dropped, v.t.important.Load(), v.t.worked.Load(), depth)
	top, _ := v.t.topSyscalls(5)
	for i, c := range top {
		sep := ","
		if i == 0 {
			sep = " top="
		}
		fmt.Fprintf(&b, "%s%s:%d", sep, c.Name, c.Count)
	}
	b.WriteByte('\n')
	lines, more := v.t.takePending()
	for _, l := range lines {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	if more > 0 {
		fmt.Fprintf(&b, "  ... and %d more important events\n", more)
	}
	io.WriteString(v.w, b.String())
}
