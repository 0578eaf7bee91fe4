//go:build linux

package solver

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// plainSink prints BuildKit's "plain" progress format: every step gets a
// number, its output lines are prefixed with it, and it ends with DONE,
// CACHED or ERROR.
type plainSink struct{ w io.Writer }

func (p *plainSink) event(e Event) {
	switch e.Kind {
	case "started":
		fmt.Fprintf(p.w, "#%d %s\n", e.Step, e.Name)
	case "log":
		fmt.Fprintf(p.w, "#%d %.3f %s\n", e.Step, e.Duration.Seconds(), e.Line)
	case "cached":
		fmt.Fprintf(p.w, "#%d CACHED\n", e.Step)
	case "done":
		fmt.Fprintf(p.w, "#%d DONE %.1fs\n", e.Step, e.Duration.Seconds())
	case "error":
		fmt.Fprintf(p.w, "#%d ERROR: %s\n", e.Step, e.Err)
	case "message":
		fmt.Fprintln(p.w, e.Line)
	case "summary":
		fmt.Fprintln(p.w, e.Summary.String())
	}
}

func (p *plainSink) close() {}

// jsonSink streams one JSON object per event (rawjson).
type jsonSink struct{ w io.Writer }

// JSONEvent is the rawjson form of an Event.
type JSONEvent struct {
	Type       string    `json:"type"`             // vertex, log, message, summary
	Status     string    `json:"status,omitempty"` // vertex: started, running, cached, done, error
	Time       time.Time `json:"time"`
	Step       int       `json:"step,omitempty"`
	Name       string    `json:"name,omitempty"`
	Pos        string    `json:"pos,omitempty"`
	Inputs     []string  `json:"inputs,omitempty"`
	Key        string    `json:"key,omitempty"`
	Stream     string    `json:"stream,omitempty"`
	Line       string    `json:"line,omitempty"`
	Seconds    float64   `json:"seconds,omitempty"`
	Error      string    `json:"error,omitempty"`
	ExitCode   int       `json:"exitCode,omitempty"`
	LogPath    string    `json:"logPath,omitempty"`
	Executed   *int      `json:"executed,omitempty"`
	Cached     *int      `json:"cached,omitempty"`
	BytesAdded *int64    `json:"bytesAdded,omitempty"`
}

func (j *jsonSink) event(e Event) {
	o := JSONEvent{Type: "vertex", Status: e.Kind, Time: e.Time, Step: e.Step, Name: e.Name, Pos: e.Pos,
		Inputs: e.Inputs, Key: e.Key, Seconds: e.Duration.Seconds(), Error: e.Err, ExitCode: e.ExitCode, LogPath: e.LogPath}
	switch e.Kind {
	case "log":
		o = JSONEvent{Type: "log", Time: e.Time, Step: e.Step, Stream: e.Stream, Line: e.Line}
	case "message":
		o = JSONEvent{Type: "message", Time: e.Time, Line: e.Line}
	case "summary":
		s := e.Summary
		o = JSONEvent{Type: "summary", Time: e.Time, Seconds: s.Duration.Seconds(), Executed: &s.Executed, Cached: &s.Cached, BytesAdded: &s.BytesAdded}
	}
	b, err := json.Marshal(o)
	if err != nil {
		return
	}
	j.w.Write(append(b, '\n'))
}

func (j *jsonSink) close() {}
