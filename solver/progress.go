package solver

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/kiln-build/kiln/solver/dag"
)

// Progress prints BuildKit's "plain" progress format: every step gets a
// number, its output lines are prefixed with it, and it ends with DONE,
// CACHED or ERROR.
type Progress struct {
	mu       sync.Mutex
	w        io.Writer
	next     int
	start    time.Time
	executed int
	cached   int
}

// NewProgress writes progress to w.
func NewProgress(w io.Writer) *Progress {
	return &Progress{w: w, next: 1, start: time.Now()}
}

// Counts returns how many steps ran and how many came from the cache.
func (p *Progress) Counts() (executed, cached int) {
	if p == nil {
		return 0, 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.executed, p.cached
}

// Printf writes a free-standing progress line.
func (p *Progress) Printf(format string, args ...any) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format, args...)
}

// Start announces v and returns its step. A nil Progress returns a step
// that only keeps the output tail.
func (p *Progress) Start(v *dag.Vertex) *Step {
	s := &Step{p: p, started: time.Now()}
	if p == nil {
		return s
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s.n = p.next
	p.next++
	name := v.Name
	if name == "" {
		name = v.Op.Kind()
	}
	fmt.Fprintf(p.w, "#%d %s\n", s.n, name)
	return s
}

// Step is one vertex's progress; it is also the io.Writer its process
// output goes to.
type Step struct {
	p       *Progress
	n       int
	started time.Time

	mu      sync.Mutex
	partial []byte
	tail    []string // last lines, for error reports
}

const tailLines = 20

func (s *Step) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.partial = append(s.partial, b...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		s.line(string(s.partial[:i]))
		s.partial = s.partial[i+1:]
	}
	return len(b), nil
}

func (s *Step) line(l string) {
	l = strings.TrimRight(l, "\r")
	s.tail = append(s.tail, l)
	if len(s.tail) > tailLines {
		s.tail = s.tail[len(s.tail)-tailLines:]
	}
	if s.p == nil {
		return
	}
	s.p.mu.Lock()
	fmt.Fprintf(s.p.w, "#%d %.3f %s\n", s.n, time.Since(s.started).Seconds(), l)
	s.p.mu.Unlock()
}

func (s *Step) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.partial) > 0 {
		s.line(string(s.partial))
		s.partial = nil
	}
}

// Tail returns the last lines the step printed.
func (s *Step) Tail() []string {
	s.flush()
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tail...)
}

// Cached ends the step as a cache hit.
func (s *Step) Cached() {
	if s.p == nil {
		return
	}
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	s.p.cached++
	fmt.Fprintf(s.p.w, "#%d CACHED\n", s.n)
}

// Done ends the step as executed.
func (s *Step) Done(d time.Duration) {
	s.flush()
	if s.p == nil {
		return
	}
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	s.p.executed++
	fmt.Fprintf(s.p.w, "#%d DONE %.1fs\n", s.n, d.Seconds())
}

// Error ends the step as failed.
func (s *Step) Error(err error) {
	s.flush()
	if s.p == nil {
		return
	}
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	fmt.Fprintf(s.p.w, "#%d ERROR: %v\n", s.n, err)
}
