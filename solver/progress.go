//go:build linux

package solver

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/go-units"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/solver/dag"
	"github.com/kiln-build/kiln/store"
)

// Event is one thing that happened during a build, as every progress
// sink (plain, tty, rawjson, trace) sees it.
type Event struct {
	Kind     string // started, running, stopped, cached, done, error, log, message, summary
	Time     time.Time
	Step     int // 0 for messages and the summary
	Name     string
	Pos      string   // Dockerfile:line
	Inputs   []string // names of the steps this one reads
	Key      string
	Queued   time.Time // started: when the vertex began waiting for its inputs
	Running  time.Time // done/error: when it got an execution slot
	Stream   string    // log: stdout or stderr
	Line     string    // log, message
	Duration time.Duration
	Err      string
	ExitCode int
	LogPath  string
	Summary  *Summary
}

// Summary is what a build did, in its last event.
type Summary struct {
	Duration   time.Duration
	Executed   int
	Cached     int
	BytesAdded int64 // compressed size of the layers this build created
}

func (s Summary) String() string {
	return fmt.Sprintf("build finished in %.2fs: %d steps run, %d cached, %s added",
		s.Duration.Seconds(), s.Executed, s.Cached, units.HumanSizeWithPrecision(float64(s.BytesAdded), 3))
}

// sink receives a build's events, in order, one at a time.
type sink interface {
	event(Event)
	close()
}

// ProgressOptions configure NewProgressWith.
type ProgressOptions struct {
	Mode  string           // plain (default), tty, rawjson or quiet
	Out   io.Writer        // where the progress goes (stderr)
	Logs  *store.BuildLogs // where each step's full output is kept; nil = nowhere
	Trace *Trace           // records a trace-event file; nil = none
	Now   func() time.Time // clock, for tests
	Width func() int       // tty width, for tests
	Ticks <-chan time.Time // tty redraw ticks; nil = every 100ms
	Start time.Time        // when the build started; zero = now
}

// Progress reports a build's steps to its sinks and keeps their logs.
type Progress struct {
	mu       sync.Mutex
	sinks    []sink
	now      func() time.Time
	logs     *store.BuildLogs
	next     int
	start    time.Time
	executed int
	cached   int
	added    int64
	queued   map[*dag.Vertex]time.Time
	names    map[*dag.Vertex]string
	closed   bool
}

// NewProgress writes BuildKit's plain progress format to w.
func NewProgress(w io.Writer) *Progress {
	return NewProgressWith(ProgressOptions{Mode: "plain", Out: w})
}

// NewProgressWith makes a Progress for o.Mode.
func NewProgressWith(o ProgressOptions) *Progress {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Start.IsZero() {
		o.Start = o.Now()
	}
	p := &Progress{now: o.Now, logs: o.Logs, next: 1, start: o.Start,
		queued: map[*dag.Vertex]time.Time{}, names: map[*dag.Vertex]string{}}
	switch o.Mode {
	case "tty":
		p.sinks = append(p.sinks, newTTY(o))
	case "rawjson":
		p.sinks = append(p.sinks, &jsonSink{w: o.Out})
	case "quiet":
	default:
		p.sinks = append(p.sinks, &plainSink{w: o.Out})
	}
	if o.Trace != nil {
		p.sinks = append(p.sinks, o.Trace)
	}
	return p
}

// LogsID is the build's log directory name, or "" when logs are not kept.
func (p *Progress) LogsID() string {
	if p == nil || p.logs == nil {
		return ""
	}
	return p.logs.ID
}

func (p *Progress) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = p.now()
	}
	if p.closed {
		return
	}
	for _, s := range p.sinks {
		s.event(e)
	}
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
	p.emit(Event{Kind: "message", Line: strings.TrimRight(fmt.Sprintf(format, args...), "\n")})
}

// Queue notes that v started waiting for its inputs; the trace shows the
// wait. Calling it is optional.
func (p *Progress) Queue(v *dag.Vertex) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.queued[v]; !ok {
		p.queued[v] = p.now()
	}
}

// Finish ends the build: it emits the summary and the final frame, and
// returns the summary.
func (p *Progress) Finish() Summary {
	if p == nil {
		return Summary{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	sum := Summary{Duration: p.now().Sub(p.start), Executed: p.executed, Cached: p.cached, BytesAdded: p.added}
	p.emit(Event{Kind: "summary", Summary: &sum})
	p.closeLocked()
	return sum
}

// Close stops live output without a summary (a failed build).
func (p *Progress) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closeLocked()
}

func (p *Progress) closeLocked() {
	if p.closed {
		return
	}
	for _, s := range p.sinks {
		s.close()
	}
	p.closed = true
}

// Start announces v and returns its step. A nil Progress returns a step
// that only keeps the output tail.
func (p *Progress) Start(v *dag.Vertex) *Step {
	s := &Step{p: p, v: v}
	if p == nil {
		s.started = time.Now()
		return s
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s.started = p.now()
	s.n = p.next
	p.next++
	name := v.Name
	if name == "" {
		name = v.Op.Kind()
	}
	p.names[v] = "#" + strconv.Itoa(s.n) + " " + name
	var inputs []string
	for _, in := range v.Inputs {
		if n, ok := p.names[in]; ok {
			inputs = append(inputs, n)
		} else if in.Name != "" {
			inputs = append(inputs, in.Name)
		} else {
			inputs = append(inputs, in.Op.Kind())
		}
	}
	s.name = name
	q, ok := p.queued[v]
	if !ok {
		q = s.started
	}
	p.emit(Event{Kind: "started", Time: s.started, Step: s.n, Name: name, Pos: v.Pos.String(), Inputs: inputs, Queued: q})
	return s
}

// Step is one vertex's progress; it is also the io.Writer its process's
// stdout goes to (Stderr for stderr). All output goes to the step's log
// file unclipped; the progress shows it line by line.
type Step struct {
	p       *Progress
	v       *dag.Vertex
	n       int
	name    string
	key     string
	started time.Time
	running time.Time

	mu      sync.Mutex
	partial map[string][]byte
	tail    []string // last lines, for error reports
	log     *os.File
	logPath string
	logErr  error
}

const tailLines = 20

// SetKey records the step's cache key for events and the trace.
func (s *Step) SetKey(k digest.Digest) {
	s.mu.Lock()
	s.key = string(k)
	s.mu.Unlock()
}

// Running notes that the step got an execution slot and starts now.
func (s *Step) Running() {
	if s.p == nil {
		return
	}
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	s.running = s.p.now()
	s.p.emit(Event{Kind: "running", Time: s.running, Step: s.n, Name: s.name})
}

// Stopped notes that the step gave its execution slot back.
func (s *Step) Stopped() {
	if s.p == nil {
		return
	}
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	s.p.emit(Event{Kind: "stopped", Step: s.n, Name: s.name})
}

// Added counts n bytes of new layer toward the build's summary.
func (s *Step) Added(n int64) {
	if s.p == nil {
		return
	}
	s.p.mu.Lock()
	s.p.added += n
	s.p.mu.Unlock()
}

func (s *Step) Write(b []byte) (int, error) { return s.write("stdout", b) }

// Stderr is the writer for the step's process's stderr.
func (s *Step) Stderr() io.Writer { return streamWriter{s, "stderr"} }

type streamWriter struct {
	s      *Step
	stream string
}

func (w streamWriter) Write(b []byte) (int, error) { return w.s.write(w.stream, b) }

func (s *Step) write(stream string, b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writeLog(b)
	if s.partial == nil {
		s.partial = map[string][]byte{}
	}
	buf := append(s.partial[stream], b...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		s.line(stream, string(buf[:i]))
		buf = buf[i+1:]
	}
	// Keep the partial line in its own array so b's memory is not retained.
	s.partial[stream] = append([]byte(nil), buf...)
	return len(b), nil
}

// writeLog streams b to the step's log file, opened on first output.
func (s *Step) writeLog(b []byte) {
	if s.p == nil || s.p.logs == nil || s.logErr != nil {
		return
	}
	if s.log == nil {
		f, err := s.p.logs.Create(strconv.Itoa(s.n))
		if err != nil {
			s.logErr = err
			return
		}
		s.log, s.logPath = f, f.Name()
	}
	if _, err := s.log.Write(b); err != nil {
		s.logErr = err
	}
}

func (s *Step) line(stream, l string) {
	l = strings.TrimRight(l, "\r")
	s.tail = append(s.tail, l)
	if len(s.tail) > tailLines {
		s.tail = s.tail[len(s.tail)-tailLines:]
	}
	if s.p == nil {
		return
	}
	s.p.mu.Lock()
	s.p.emit(Event{Kind: "log", Step: s.n, Stream: stream, Line: l, Duration: s.p.now().Sub(s.started)})
	s.p.mu.Unlock()
}

// flush emits unterminated output and closes the log.
func (s *Step) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, stream := range []string{"stdout", "stderr"} {
		if len(s.partial[stream]) > 0 {
			s.line(stream, string(s.partial[stream]))
			s.partial[stream] = nil
		}
	}
	if s.log != nil {
		s.log.Close()
		s.log = nil
	}
}

// Tail returns the last lines the step printed.
func (s *Step) Tail() []string {
	s.flush()
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tail...)
}

// LogPath is the file holding the step's full output ("" if it printed
// nothing or logs are not kept).
func (s *Step) LogPath() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logPath
}

func (s *Step) end(kind string, d time.Duration, err error, exit int) {
	s.flush()
	if s.p == nil {
		return
	}
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	e := Event{Kind: kind, Step: s.n, Name: s.name, Duration: d, Key: s.key, Running: s.running, LogPath: s.logPath, ExitCode: exit}
	switch kind {
	case "cached":
		s.p.cached++
	case "done":
		s.p.executed++
	}
	if err != nil {
		e.Err = err.Error()
	}
	s.p.emit(e)
}

// Cached ends the step as a cache hit.
func (s *Step) Cached() { s.end("cached", 0, nil, 0) }

// Done ends the step as executed.
func (s *Step) Done(d time.Duration) { s.end("done", d, nil, 0) }

// Error ends the step as failed.
func (s *Step) Error(err error) {
	var exit int
	if se := stepError(s.v, err); se != nil {
		if e, ok := se.(*StepError); ok {
			exit = e.ExitCode
		}
	}
	d := time.Duration(0)
	if s.p != nil {
		d = s.p.now().Sub(s.started)
	}
	s.end("error", d, err, exit)
}
