//go:build linux

package solver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/solver/dag"
	"github.com/kiln-build/kiln/store"
)

// fakeClock advances only when told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func vertex(name string, inputs ...*dag.Vertex) *dag.Vertex {
	return &dag.Vertex{Op: &dag.ExecOp{Args: []string{"sh", "-c", name}}, Name: name, Inputs: inputs, Pos: dag.Pos{File: "Dockerfile", Line: 3}}
}

// script drives a Progress through a small build: a cached base, a step
// that prints and succeeds and one that prints and fails.
func script(p *Progress, c *fakeClock) {
	base := vertex("[1/3] FROM busybox")
	run := vertex("[2/3] RUN make", base)
	bad := vertex("[3/3] RUN test", run)
	s := p.Start(base)
	s.SetKey("sha256:aa")
	s.Cached()
	p.Queue(run)
	s = p.Start(run)
	s.Running()
	c.add(500 * time.Millisecond)
	fmt.Fprint(s, "compiling\nlinking")
	fmt.Fprint(s.Stderr(), "warning: x\n")
	c.add(700 * time.Millisecond)
	s.Added(2048)
	s.Done(1200 * time.Millisecond)
	s = p.Start(bad)
	s.Running()
	fmt.Fprint(s, "FAIL\n")
	s.Error(&executor.ExitError{Code: 3})
	p.Printf("writing image sha256:1 done\n")
	c.add(100 * time.Millisecond)
	p.Finish()
}

func TestPlainProgress(t *testing.T) {
	c := newClock()
	var b bytes.Buffer
	p := NewProgressWith(ProgressOptions{Mode: "plain", Out: &b, Now: c.now})
	script(p, c)
	want := []string{
		"#1 [1/3] FROM busybox", "#1 CACHED",
		"#2 [2/3] RUN make", "#2 0.500 compiling", "#2 0.500 warning: x", "#2 1.200 linking", "#2 DONE 1.2s",
		"#3 [3/3] RUN test", "#3 0.000 FAIL", "#3 ERROR: ",
		"writing image sha256:1 done",
		"build finished in 1.30s: 1 steps run, 1 cached, 2.05kB added",
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), b.String())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], w)
		}
	}
	if e, c := p.Counts(); e != 1 || c != 1 {
		t.Errorf("Counts = %d, %d", e, c)
	}
}

func TestRawJSONProgress(t *testing.T) {
	c := newClock()
	var b bytes.Buffer
	p := NewProgressWith(ProgressOptions{Mode: "rawjson", Out: &b, Now: c.now})
	script(p, c)
	var evs []JSONEvent
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var e JSONEvent
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line %q is not JSON: %v", l, err)
		}
		evs = append(evs, e)
	}
	status := map[string]int{}
	streams := map[string]string{}
	var sum *JSONEvent
	for i, e := range evs {
		switch e.Type {
		case "vertex":
			status[e.Status]++
			if e.Status == "cached" && e.Key != "sha256:aa" {
				t.Errorf("cached event without its key: %+v", e)
			}
			if e.Status == "error" && e.ExitCode != 3 {
				t.Errorf("error event exit code %d, want 3", e.ExitCode)
			}
			if e.Status == "started" && e.Step == 2 && (len(e.Inputs) != 1 || e.Inputs[0] != "#1 [1/3] FROM busybox" || e.Pos != "Dockerfile:3") {
				t.Errorf("started event lacks inputs or position: %+v", e)
			}
		case "log":
			streams[e.Line] = e.Stream
		case "summary":
			sum = &evs[i]
		}
	}
	if status["started"] != 3 || status["cached"] != 1 || status["done"] != 1 || status["error"] != 1 || status["running"] != 2 {
		t.Errorf("vertex events %v", status)
	}
	if streams["compiling"] != "stdout" || streams["warning: x"] != "stderr" || streams["linking"] != "stdout" {
		t.Errorf("log streams %v", streams)
	}
	if sum == nil || *sum.Executed != 1 || *sum.Cached != 1 || *sum.BytesAdded != 2048 || sum.Seconds != 1.3 {
		t.Errorf("summary %+v", sum)
	}
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

func TestTTYProgress(t *testing.T) {
	c := newClock()
	var b bytes.Buffer
	ticks := make(chan time.Time)
	p := NewProgressWith(ProgressOptions{Mode: "tty", Out: &b, Now: c.now, Ticks: ticks, Width: func() int { return 40 }})
	tty := p.sinks[0].(*ttySink)
	frame := func() string {
		t.Helper()
		ticks <- c.now()
		ticks <- c.now() // the first tick's frame is written once the second is taken
		tty.mu.Lock()
		defer tty.mu.Unlock()
		s := b.String()
		b.Reset()
		return s
	}
	base := vertex("[1/3] FROM busybox")
	s := p.Start(base)
	s.Cached()
	run := vertex("[2/3] RUN a-command-with-a-very-long-name-that-does-not-fit", base)
	s = p.Start(run)
	s.Running()
	for i := range 8 {
		fmt.Fprintf(s, "line %d\n", i)
	}
	// Events alone draw nothing: frames come at most once per tick.
	tty.mu.Lock()
	if b.Len() != 0 {
		t.Errorf("drew without a tick: %q", b.String())
	}
	tty.mu.Unlock()
	c.add(2300 * time.Millisecond)
	f := frame()
	plain := strings.ReplaceAll(ansi.ReplaceAllString(f, ""), "\r", "")
	if !strings.Contains(plain, "#1 [1/3] FROM busybox") || !strings.Contains(plain, "CACHED") {
		t.Errorf("finished step not scrolled out:\n%s", plain)
	}
	if !strings.Contains(plain, "2.3s") {
		t.Errorf("running step has no timer:\n%s", plain)
	}
	if strings.Contains(plain, "line 2") || !strings.Contains(plain, "line 3") || !strings.Contains(plain, "line 7") {
		t.Errorf("want the last %d output lines:\n%s", ttyLines, plain)
	}
	for _, l := range strings.Split(strings.TrimRight(plain, "\n"), "\n") {
		if n := len([]rune(l)); n > 40 {
			t.Errorf("line wider than the terminal (%d): %q", n, l)
		}
	}
	c.add(time.Second)
	f = frame()
	if !strings.HasPrefix(f, "\x1b[6A") {
		t.Errorf("redraw does not move up over the 6 live lines: %q", f)
	}
	if !strings.Contains(f, "3.3s") || strings.Contains(f, "CACHED") {
		t.Errorf("second frame: %q", f)
	}
	s.Done(3300 * time.Millisecond)
	p.Printf("writing image done")
	p.Finish()
	final := ansi.ReplaceAllString(b.String(), "")
	for _, w := range []string{"#2 [2/3] RUN a-command", "DONE 3.3s", "writing image done", "build finished in 3.30s: 1 steps run, 1 cached"} {
		if !strings.Contains(final, w) {
			t.Errorf("final frame lacks %q:\n%s", w, final)
		}
	}
	if strings.Contains(final, "line 7") {
		t.Errorf("final frame keeps a finished step's output:\n%s", final)
	}
}

func TestStepLogsAreKeptWhole(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	logs := st.Builds().NewLogs()
	p := NewProgressWith(ProgressOptions{Mode: "quiet", Logs: logs})
	v := vertex("[1/1] RUN noisy")
	s := p.Start(v)
	s.Running()
	var want strings.Builder
	for i := range 5000 {
		l := fmt.Sprintf("line %d %s\n", i, strings.Repeat("x", i%100))
		want.WriteString(l)
		if i%2 == 0 {
			fmt.Fprint(s, l)
		} else {
			fmt.Fprint(s.Stderr(), l)
		}
	}
	fmt.Fprint(s, "no newline at the end")
	want.WriteString("no newline at the end")
	err = stepError(v, &executor.ExitError{Code: 2}, s)
	var se *StepError
	if !errors.As(err, &se) {
		t.Fatalf("not a StepError: %v", err)
	}
	if se.LogPath == "" || !strings.HasPrefix(se.LogPath, logs.Dir()) {
		t.Fatalf("log path %q not under %s", se.LogPath, logs.Dir())
	}
	got, err := os.ReadFile(se.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want.String() {
		t.Errorf("log has %d bytes, want %d", len(got), want.Len())
	}
	if len(se.Tail) != tailLines || se.Tail[tailLines-1] != "no newline at the end" {
		t.Errorf("tail %q", se.Tail)
	}
	msg := se.Error()
	for _, w := range []string{"Dockerfile:3", "exit code: 2", "line 4999", "full log: " + se.LogPath} {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %q:\n%s", w, msg)
		}
	}
	// A step with no output has no log file.
	s2 := p.Start(vertex("[1/1] RUN quiet"))
	s2.Done(0)
	if s2.LogPath() != "" {
		t.Errorf("silent step got a log %q", s2.LogPath())
	}
}
