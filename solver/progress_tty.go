//go:build linux

package solver

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// ttySink redraws live per-step lines (with timers and the last output
// lines of running steps) at most ten times a second. Finished steps at the
// head of the list scroll into the terminal's history in step order; the
// final frame leaves the same facts as the plain format.
type ttySink struct {
	mu        sync.Mutex
	w         io.Writer
	now       func() time.Time
	width     func() int
	live      []*ttyStep // started, not yet scrolled out, in step order
	byN       map[int]*ttyStep
	pending   []string // messages to print above the live area
	summary   *Summary
	drawn     int // lines of the live area on screen
	dirty     bool
	stop      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
}

type ttyStep struct {
	n        int
	name     string
	status   string // started, running, cached, done, error
	start    time.Time
	dur      time.Duration
	lines    []string
	err      string
	exitCode int
	logPath  string
}

const ttyLines = 5 // output lines shown under a running step

func newTTY(o ProgressOptions) *ttySink {
	t := &ttySink{w: o.Out, now: o.Now, width: o.Width, byN: map[int]*ttyStep{},
		stop: make(chan struct{}), stopped: make(chan struct{})}
	if t.width == nil {
		t.width = func() int { return 80 }
	}
	ticks := o.Ticks
	var tk *time.Ticker
	if ticks == nil {
		tk = time.NewTicker(100 * time.Millisecond)
		ticks = tk.C
	}
	go func() {
		defer close(t.stopped)
		if tk != nil {
			defer tk.Stop()
		}
		for {
			select {
			case <-ticks:
				t.mu.Lock()
				if t.dirty || t.running() {
					t.render(false)
				}
				t.mu.Unlock()
			case <-t.stop:
				return
			}
		}
	}()
	return t
}

func (t *ttySink) running() bool {
	for _, s := range t.live {
		if s.status == "started" || s.status == "running" {
			return true
		}
	}
	return false
}

func (t *ttySink) event(e Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dirty = true
	s := t.byN[e.Step]
	switch e.Kind {
	case "started":
		s = &ttyStep{n: e.Step, name: e.Name, status: "started", start: e.Time}
		t.byN[e.Step] = s
		t.live = append(t.live, s)
	case "running":
		if s != nil {
			s.status, s.start = "running", e.Time
		}
	case "log":
		if s != nil {
			s.lines = append(s.lines, e.Line)
			if len(s.lines) > ttyLines {
				s.lines = s.lines[len(s.lines)-ttyLines:]
			}
		}
	case "cached", "done", "error":
		if s != nil {
			s.status, s.dur, s.err, s.exitCode, s.logPath = e.Kind, e.Duration, e.Err, e.ExitCode, e.LogPath
		}
	case "message":
		t.pending = append(t.pending, e.Line)
	case "summary":
		t.summary = e.Summary
	}
}

func (t *ttySink) close() {
	t.closeOnce.Do(func() {
		close(t.stop)
		<-t.stopped
		t.mu.Lock()
		t.render(true)
		t.mu.Unlock()
	})
}

// render draws one frame: it erases the previous live area, prints what
// has become permanent, then the live area. final makes everything
// permanent.
func (t *ttySink) render(final bool) {
	var b strings.Builder
	if t.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA\r\x1b[J", t.drawn)
	}
	w := t.width()
	for _, m := range t.pending {
		b.WriteString(m + "\n")
	}
	t.pending = nil
	// Scroll out finished steps from the head, so history reads in order.
	for len(t.live) > 0 && (final || finished(t.live[0])) {
		t.writeFinal(&b, t.live[0], w)
		t.live = t.live[1:]
	}
	t.drawn = 0
	now := t.now()
	for _, s := range t.live {
		t.drawn += t.writeLive(&b, s, now, w)
	}
	if final && t.summary != nil {
		b.WriteString(t.summary.String() + "\n")
	}
	t.dirty = false
	io.WriteString(t.w, b.String())
}

func finished(s *ttyStep) bool {
	return s.status == "cached" || s.status == "done" || s.status == "error"
}

func (t *ttySink) writeFinal(b *strings.Builder, s *ttyStep, w int) {
	switch s.status {
	case "cached":
		b.WriteString(fit(fmt.Sprintf("#%d %s", s.n, s.name), w, "CACHED") + "\n")
	case "done":
		b.WriteString(fit(fmt.Sprintf("#%d %s", s.n, s.name), w, fmt.Sprintf("DONE %.1fs", s.dur.Seconds())) + "\n")
	case "error":
		b.WriteString(fit(fmt.Sprintf("#%d %s", s.n, s.name), w, "ERROR") + "\n")
		for _, l := range s.lines {
			b.WriteString(fit(fmt.Sprintf("#%d > %s", s.n, l), w, "") + "\n")
		}
		b.WriteString(fit(fmt.Sprintf("#%d ERROR: %s", s.n, s.err), w, "") + "\n")
	default:
		b.WriteString(fit(fmt.Sprintf("#%d %s", s.n, s.name), w, "CANCELED") + "\n")
	}
}

// writeLive writes a step's live lines and returns how many it wrote.
func (t *ttySink) writeLive(b *strings.Builder, s *ttyStep, now time.Time, w int) int {
	if finished(s) {
		t.writeFinal(b, s, w)
		if s.status == "error" {
			return len(s.lines) + 2
		}
		return 1
	}
	state := fmt.Sprintf("%.1fs", now.Sub(s.start).Seconds())
	if s.status == "started" {
		state = "waiting " + state
	}
	b.WriteString(fit(fmt.Sprintf("#%d %s", s.n, s.name), w, state) + "\n")
	for _, l := range s.lines {
		b.WriteString(fit("  > "+l, w, "") + "\n")
	}
	return 1 + len(s.lines)
}

// fit pads or clips left so that left and right fill one line of width w.
func fit(left string, w int, right string) string {
	left = strings.Map(func(r rune) rune {
		if r < ' ' && r != '\t' || r == 0x7f {
			return -1 // control bytes would break the redraw
		}
		return r
	}, left)
	room := w - utf8.RuneCountInString(right) - 1
	if right == "" {
		room = w
	}
	if room < 10 {
		room = 10
	}
	if n := utf8.RuneCountInString(left); n > room {
		r := []rune(left)
		left = string(r[:room-1]) + "…"
	} else if right != "" {
		left += strings.Repeat(" ", room-n)
	}
	if right == "" {
		return left
	}
	return left + " " + right
}
