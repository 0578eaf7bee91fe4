//go:build linux

package solver

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"
)

// Trace records a build's steps as Chrome trace events (the
// {"traceEvents": [...]} format that Perfetto and chrome://tracing open):
// per step a "queued" slice (waiting for inputs or a slot), then a
// "running" slice on the execution slot that ran it, or a "cached" slice.
type Trace struct {
	mu    sync.Mutex
	steps map[int]*traceStep
	order []int
	slots []bool // slot i+1 busy
}

type traceStep struct {
	name, pos, key, status string
	inputs                 []string
	queued, start, running time.Time
	stopped, end           time.Time
	slot                   int
	exitCode               int
	err                    string
}

// NewTrace returns an empty trace; pass it in ProgressOptions.Trace.
func NewTrace() *Trace { return &Trace{steps: map[int]*traceStep{}} }

func (t *Trace) event(e Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.steps[e.Step]
	switch e.Kind {
	case "started":
		s = &traceStep{name: e.Name, pos: e.Pos, inputs: e.Inputs, queued: e.Queued, start: e.Time}
		t.steps[e.Step] = s
		t.order = append(t.order, e.Step)
	case "running":
		if s == nil {
			return
		}
		s.running = e.Time
		// The lowest free slot: as many lanes as steps ever ran at once.
		for i, busy := range t.slots {
			if !busy {
				s.slot = i + 1
				t.slots[i] = true
				break
			}
		}
		if s.slot == 0 {
			t.slots = append(t.slots, true)
			s.slot = len(t.slots)
		}
	case "stopped":
		if s == nil || !s.stopped.IsZero() {
			return
		}
		s.stopped = e.Time
		if s.slot > 0 {
			t.slots[s.slot-1] = false
		}
	case "cached", "done", "error":
		if s == nil {
			return
		}
		s.status, s.end, s.key, s.exitCode, s.err = e.Kind, e.Time, e.Key, e.ExitCode, e.Err
		if s.slot > 0 && s.stopped.IsZero() {
			s.stopped = e.Time
			t.slots[s.slot-1] = false
		}
	}
}

func (t *Trace) close() {}

// traceEvent is one Chrome trace event; ts and dur are microseconds.
type traceEvent struct {
	Name string         `json:"name"`
	Cat  string         `json:"cat,omitempty"`
	Ph   string         `json:"ph"`
	Ts   int64          `json:"ts"`
	Dur  *int64         `json:"dur,omitempty"`
	Pid  int            `json:"pid"`
	Tid  int            `json:"tid"`
	Args map[string]any `json:"args,omitempty"`
}

// Trace lanes: pid 1 holds one thread per execution slot, pid 2 one
// thread per step for its queued and cached time.
const (
	tracePidSlots = 1
	tracePidSteps = 2
)

// Events returns the trace's events, steps in start order. Steps that
// never ended (a cancelled build) end at now.
func (t *Trace) Events(now time.Time) []traceEvent {
	t.mu.Lock()
	defer t.mu.Unlock()
	var t0 time.Time
	for _, s := range t.steps {
		if t0.IsZero() || s.queued.Before(t0) {
			t0 = s.queued
		}
	}
	us := func(x time.Time) int64 { return x.Sub(t0).Microseconds() }
	slice := func(name, cat string, pid, tid int, from, to time.Time, args map[string]any) traceEvent {
		d := to.Sub(from).Microseconds()
		return traceEvent{Name: name, Cat: cat, Ph: "X", Ts: us(from), Dur: &d, Pid: pid, Tid: tid, Args: args}
	}
	evs := []traceEvent{
		{Name: "process_name", Ph: "M", Pid: tracePidSlots, Args: map[string]any{"name": "execution slots"}},
		{Name: "process_name", Ph: "M", Pid: tracePidSteps, Args: map[string]any{"name": "steps: queued and cached"}},
	}
	seen := map[int]bool{}
	steps := append([]int(nil), t.order...)
	sort.Ints(steps)
	for _, n := range steps {
		s := t.steps[n]
		end := s.end
		if end.IsZero() {
			end = now
		}
		status := s.status
		if status == "" {
			status = "canceled"
		}
		inputs := s.inputs
		if inputs == nil {
			inputs = []string{}
		}
		args := map[string]any{"step": n, "inputs": inputs, "key": s.key, "status": status}
		if s.pos != "" {
			args["pos"] = s.pos
		}
		if s.err != "" {
			args["error"], args["exitCode"] = s.err, s.exitCode
		}
		evs = append(evs, traceEvent{Name: "thread_name", Ph: "M", Pid: tracePidSteps, Tid: n,
			Args: map[string]any{"name": fmt.Sprintf("#%d %s", n, s.name)}})
		queuedEnd := s.running
		if queuedEnd.IsZero() {
			queuedEnd = end
		}
		evs = append(evs, slice("queued "+s.name, "queued", tracePidSteps, n, s.queued, queuedEnd, args))
		switch {
		case s.slot > 0:
			if !seen[s.slot] {
				seen[s.slot] = true
				evs = append(evs, traceEvent{Name: "thread_name", Ph: "M", Pid: tracePidSlots, Tid: s.slot,
					Args: map[string]any{"name": fmt.Sprintf("slot %d", s.slot)}})
			}
			stop := s.stopped
			if stop.IsZero() {
				stop = end
			}
			evs = append(evs, slice(s.name, "running", tracePidSlots, s.slot, s.running, stop, args))
		case status == "cached":
			evs = append(evs, slice("CACHED "+s.name, "cached", tracePidSteps, n, s.start, end, args))
		}
	}
	return evs
}

// WriteFile writes the trace to path.
func (t *Trace) WriteFile(path string, now time.Time) error {
	b, err := json.Marshal(struct {
		TraceEvents     []traceEvent `json:"traceEvents"`
		DisplayTimeUnit string       `json:"displayTimeUnit"`
	}{t.Events(now), "ms"})
	if err != nil {
		return fmt.Errorf("encoding trace: %w", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("writing trace %s: %w", path, err)
	}
	return nil
}
