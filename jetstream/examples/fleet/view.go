package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// maxNotes is how many of the latest notes (kills, restarts, bucket
// changes) a terminal frame shows.
const maxNotes = 6

// view renders the live figures: a redrawn frame on a terminal, plain
// lines otherwise. Notes (what the run did: a kill, a restart, a bucket
// change) are kept for the frame, or printed as they come.
type view struct {
	w        io.Writer
	tty      bool
	width    int // the terminal's columns; 0: unknown
	interval time.Duration
	header   string // the frame's first line's end: how it stops, where metrics are

	start time.Time
	last  time.Time
	prev  map[string]uint64 // records per node at the last frame
	rates map[string]float64

	mu    sync.Mutex
	notes []string
}

// frameInput is what one frame shows.
type frameInput struct {
	Nodes    []nodeView
	Kernel   map[string]kernelFigures
	Stream   map[string]streamFigures
	Messages uint64 // in the stream
	Bytes    uint64
	Pending  uint64 // messages the collector has yet to get
	Blocked  []string
}

func newView(w io.Writer, interval time.Duration, header string) *view {
	v := &view{w: w, tty: isTerminal(w), header: header, prev: map[string]uint64{}, rates: map[string]float64{}}
	if f, ok := w.(*os.File); ok && v.tty {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil {
			v.width = int(ws.Col)
		}
	}
	v.interval = interval
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

// isTerminal reports whether w is a terminal that understands escape
// sequences (a character device other than /dev/null, TERM not dumb).
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

// note records what the run did; without a terminal it is printed at once.
func (v *view) note(format string, args ...any) {
	line := fmt.Sprintf("%6.1fs  %s", time.Since(v.start).Seconds(), fmt.Sprintf(format, args...))
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.tty {
		fmt.Fprintln(v.w, line)
		return
	}
	v.notes = append(v.notes, line)
	if len(v.notes) > maxNotes {
		v.notes = v.notes[len(v.notes)-maxNotes:]
	}
}

// render draws one frame.
func (v *view) render(now time.Time, in frameInput) {
	dt := now.Sub(v.last).Seconds()
	for _, n := range in.Nodes {
		got := in.Stream[n.Name].Records
		if dt > 0 {
			v.rates[n.Name] = float64(got-min(v.prev[n.Name], got)) / dt
		}
		v.prev[n.Name] = got
	}
	v.last = now
	if v.tty {
		v.frame(now, in)
	} else {
		v.line(now, in)
	}
}

// backlog is what the kernel wrote for a node that the stream does not
// hold yet: in its ring, or on its way.
func backlog(k kernelFigures, st streamFigures) uint64 {
	return k.Written() - min(st.Records, k.Written())
}

func (v *view) frame(now time.Time, in frameInput) {
	var b strings.Builder
	nl := func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		if v.width > 1 && len(line) >= v.width {
			line = line[:v.width-1] // a wrapped line would push the frame down
		}
		b.WriteString(line)
		b.WriteString("\x1b[K\n") // clear the rest of the line
	}
	b.WriteString("\x1b[H") // cursor home
	nl("bpfchan fleet  %.1fs  (%s)", now.Sub(v.start).Seconds(), v.header)
	nl("sys_enter -> pinned ring -> Forward -> JetStream -> collector;  KV blocked -> Mirror -> BPF hash map")
	nl("")
	blocked := "none"
	if len(in.Blocked) > 0 {
		blocked = strings.Join(in.Blocked, ", ")
	}
	nl("  stream  %s messages, %s bytes; the collector has %s to go;  blocked: %s",
		num(in.Messages), num(in.Bytes), num(in.Pending), blocked)
	nl("")
	nl("  %-8s %-9s %10s %12s %12s %10s %10s %9s %12s %8s",
		"node", "state", "events/s", "kernel", "stream", "ring full", "blocked", "backlog", "ring acked", "restarts")
	for _, n := range in.Nodes {
		k, st := in.Kernel[n.Name], in.Stream[n.Name]
		nl("  %-8s %-9s %10s %12s %12s %10s %10s %9s %12s %8d",
			n.Name, n.State, num(uint64(v.rates[n.Name])), num(k.Events), num(st.Records), num(k.RingFull),
			num(st.Blocked), num(backlog(k, st)), num(n.Stats.AckedPos/recordSize), n.Restarts)
	}
	nl("")
	v.mu.Lock()
	notes := v.notes
	for _, l := range notes {
		nl("  %s", l)
	}
	v.mu.Unlock()
	for i := len(notes); i < maxNotes; i++ {
		nl("")
	}
	b.WriteString("\x1b[J") // clear below
	io.WriteString(v.w, b.String())
}

func (v *view) line(now time.Time, in frameInput) {
	var b strings.Builder
	fmt.Fprintf(&b, "t=%.1fs stream=%d pending=%d", now.Sub(v.start).Seconds(), in.Messages, in.Pending)
	for _, n := range in.Nodes {
		k, st := in.Kernel[n.Name], in.Stream[n.Name]
		fmt.Fprintf(&b, " | %s %s events/s=%d kernel=%d stream=%d full=%d blocked=%d backlog=%d acked=%d restarts=%d",
			n.Name, n.State, uint64(v.rates[n.Name]), k.Events, st.Records, k.RingFull, st.Blocked,
			backlog(k, st), n.Stats.AckedPos/recordSize, n.Restarts)
	}
	b.WriteByte('\n')
	v.mu.Lock()
	defer v.mu.Unlock()
	io.WriteString(v.w, b.String())
}
