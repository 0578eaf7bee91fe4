//go:build linux

package solver

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestTraceSlotsAndSlices(t *testing.T) {
	c := newClock()
	tr := NewTrace()
	p := NewProgressWith(ProgressOptions{Mode: "quiet", Trace: tr, Now: c.now})
	base := vertex("base")
	a, b, d := vertex("a", base), vertex("b", base), vertex("d", base)
	p.Queue(a)
	p.Queue(b)
	p.Queue(d)
	sb := p.Start(base)
	sb.SetKey("sha256:base")
	sb.Cached()
	c.add(time.Second)
	sa, sbb := p.Start(a), p.Start(b)
	sa.Running()
	sbb.Running()
	c.add(2 * time.Second)
	sa.Stopped()
	sd := p.Start(d)
	sd.Running() // takes the slot a gave back, though a has not ended yet
	sa.Done(2 * time.Second)
	c.add(time.Second)
	sbb.Done(3 * time.Second)
	sd.Done(time.Second)
	path := filepath.Join(t.TempDir(), "trace.json")
	if err := tr.WriteFile(path, c.now()); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		TraceEvents []traceEvent `json:"traceEvents"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	type span struct {
		tid      int
		from, to int64
		args     map[string]any
	}
	running, queued, cached := map[string]span{}, map[string]span{}, map[string]span{}
	for _, e := range f.TraceEvents {
		if e.Ph != "X" {
			continue
		}
		name := e.Args["step"]
		s := span{e.Tid, e.Ts, e.Ts + *e.Dur, e.Args}
		key := map[float64]string{1: "base", 2: "a", 3: "b", 4: "d"}[name.(float64)]
		switch e.Cat {
		case "running":
			running[key] = s
		case "queued":
			queued[key] = s
		case "cached":
			cached[key] = s
		}
	}
	if len(queued) != 4 || len(running) != 3 || len(cached) != 1 {
		t.Fatalf("queued %d, running %d, cached %d", len(queued), len(running), len(cached))
	}
	if running["a"].tid == running["b"].tid || running["d"].tid != running["a"].tid {
		t.Errorf("slots a=%d b=%d d=%d: want a and b apart and d reusing a's", running["a"].tid, running["b"].tid, running["d"].tid)
	}
	if running["a"].from != 1e6 || running["a"].to != 3e6 || running["b"].to != 4e6 {
		t.Errorf("running spans %+v", running)
	}
	// d was queued from the start (waiting for base) until it ran at 3s.
	if queued["d"].from != 0 || queued["d"].to != 3e6 {
		t.Errorf("queued span of d %+v", queued["d"])
	}
	if cached["base"].args["key"] != "sha256:base" {
		t.Errorf("cached args %v", cached["base"].args)
	}
	if in, _ := running["a"].args["inputs"].([]any); len(in) != 1 || in[0] != "#1 base" {
		t.Errorf("inputs of a: %v", running["a"].args["inputs"])
	}
}
