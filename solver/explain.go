//go:build linux

package solver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/solver/dag"
)

// buildRecord is what a build remembers of each step, so that the next
// build of the same target can say exactly why a step missed the cache.
type buildRecord struct {
	Version int                    `json:"v,omitempty"`
	Steps   map[string]*stepRecord `json:"steps"` // by slot
}

// recordVersion changes with what a record's steps hold or their slots
// mean; an older record explains nothing (its keys are of an older
// dag version too). 2: slots from the vertex's stage and step, Text.
const recordVersion = 2

type stepRecord struct {
	Name    string            `json:"name"`
	Text    string            `json:"text"` // the instruction, without its "[stage n/m]" label
	Key     digest.Digest     `json:"key"`
	Op      json.RawMessage   `json:"op"`
	Inputs  []string          `json:"inputs"` // the inputs' slots
	Files   map[string]string `json:"files,omitempty"`
	Content digest.Digest     `json:"content,omitempty"`
	// InputKeys are the inputs' keys: another machine's record of the
	// step (a remote cache entry) says with them which input differed.
	InputKeys []digest.Digest `json:"inputKeys,omitempty"`
}

// recorder collects this build's steps and explains misses against the
// previous record, which is read only if a miss needs explaining (it holds
// every context file's description: megabytes for a big context).
type recorder struct {
	mu     sync.Mutex
	load   func(context.Context, *buildRecord) error // reads the previous record
	loaded bool
	prev   buildRecord
	cur    buildRecord
	store  History
	id     string // the build's name
	older  bool   // the previous record is of an older recordVersion
}

func newRecorder(h History, id string) *recorder {
	return &recorder{
		cur:   buildRecord{Version: recordVersion, Steps: map[string]*stepRecord{}},
		store: h, id: id,
		load: func(ctx context.Context, b *buildRecord) error { return h.ReadRecord(ctx, id, b) },
	}
}

// prevSteps returns the previous record's steps, reading it on first use.
// The caller holds r.mu.
func (r *recorder) prevSteps(ctx context.Context) map[string]*stepRecord {
	if !r.loaded {
		r.loaded = true
		err := r.load(ctx, &r.prev)
		if err == nil && r.prev.Version != recordVersion {
			r.older = true
		}
		if err != nil || r.older || r.prev.Steps == nil {
			r.prev = buildRecord{Steps: map[string]*stepRecord{}}
		}
	}
	return r.prev.Steps
}

// sum summarises what the next build compares against: every step's slot,
// name, key (which covers its op and the files it read) and inputs.
func (b *buildRecord) sum() string {
	slots := make([]string, 0, len(b.Steps))
	for sl := range b.Steps {
		slots = append(slots, sl)
	}
	sort.Strings(slots)
	h := sha256.New()
	fmt.Fprintf(h, "v%d\n", b.Version)
	for _, sl := range slots {
		st := b.Steps[sl]
		fmt.Fprintf(h, "%q %q %s %q\n", sl, st.Name, st.Key, st.Inputs)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// save writes this build's record unless it is the one already stored: a
// fully cached rebuild then writes nothing.
func (r *recorder) save(ctx context.Context) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	sum := r.cur.sum()
	if sum == r.store.RecordSum(ctx, r.id) {
		return nil
	}
	return r.store.WriteRecord(ctx, r.id, sum, &r.cur)
}

// slot names a step by its place in the Dockerfile, "[build 3]" for the
// third step of stage build: it survives a change of the instruction's
// text, and of the number of steps after it.
func slot(v *dag.Vertex) string {
	if v.StepIndex > 0 {
		return fmt.Sprintf("[%s %d]", v.Stage, v.StepIndex)
	}
	if v.Name != "" {
		return v.Name
	}
	return v.Op.Kind() + "@" + v.Pos.String()
}

func (r *recorder) add(v *dag.Vertex, key digest.Digest, files map[string]string, content digest.Digest, inputKeys []digest.Digest) {
	if r == nil {
		return
	}
	op, _ := json.Marshal(v.Op)
	sr := &stepRecord{Name: v.Name, Text: text(v), Key: key, Op: op, Files: files, Content: content, InputKeys: inputKeys}
	for _, in := range v.Inputs {
		sr.Inputs = append(sr.Inputs, slot(in))
	}
	r.mu.Lock()
	r.cur.Steps[slot(v)] = sr
	r.mu.Unlock()
}

// explain says why v, with the given key, is not what the last build had.
func (r *recorder) explain(ctx context.Context, v *dag.Vertex, key digest.Digest) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := slot(v)
	prev := r.prevSteps(ctx)
	old, ok := prev[s]
	cur := r.cur.Steps[s]
	switch {
	case r.older:
		return "the last build of this target was by an older kiln, whose cache keys differ"
	case !ok:
		return "no earlier build of this step in this store"
	case old.Key == key:
		return "the same step was built before, but its result is no longer in the store (pruned?)"
	case cur == nil:
		return "changed"
	}
	why := stepDiff(old, cur)
	for i, in := range v.Inputs {
		if o, c := prev[slot(in)], r.cur.Steps[slot(in)]; o != nil && c != nil && o.Key != c.Key && i < len(cur.Inputs) {
			why = append(why, "input changed: "+c.Name)
		}
	}
	if len(why) == 0 {
		return "its definition changed"
	}
	return strings.Join(why, "; ")
}

// stepDiff says how two records of a step differ in the step itself:
// its instruction, its op's fields, the context files it read.
func stepDiff(old, cur *stepRecord) []string {
	var why []string
	if old.Text != cur.Text {
		why = append(why, fmt.Sprintf("instruction changed: %q → %q", old.Text, cur.Text))
	}
	why = append(why, opDiff(old.Op, cur.Op)...)
	if old.Content != cur.Content {
		why = append(why, fileDiff(old.Files, cur.Files)...)
	}
	return why
}

// opDiff names the fields of an op that differ, with env/arg values.
func opDiff(a, b json.RawMessage) []string {
	var ma, mb map[string]any
	if json.Unmarshal(a, &ma) != nil || json.Unmarshal(b, &mb) != nil {
		return nil
	}
	var out []string
	keys := make([]string, 0, len(mb))
	for k := range mb {
		keys = append(keys, k)
	}
	for k := range ma {
		if _, ok := mb[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		va, _ := json.Marshal(ma[k])
		vb, _ := json.Marshal(mb[k])
		if string(va) == string(vb) {
			continue
		}
		switch k {
		case "env":
			out = append(out, envDiff(ma[k], mb[k])...)
		case "digest":
			out = append(out, fmt.Sprintf("base image changed: %v → %v", ma[k], mb[k]))
		case "args":
			// the instruction text change is reported from the name
		default:
			out = append(out, fmt.Sprintf("%s changed: %s → %s", k, va, vb))
		}
	}
	return out
}

func envDiff(a, b any) []string {
	toMap := func(x any) map[string]string {
		m := map[string]string{}
		l, _ := x.([]any)
		for _, e := range l {
			s, _ := e.(string)
			k, v, _ := strings.Cut(s, "=")
			m[k] = v
		}
		return m
	}
	ma, mb := toMap(a), toMap(b)
	var out []string
	for k, v := range mb {
		if ov, ok := ma[k]; !ok {
			out = append(out, fmt.Sprintf("env/arg %s added (%q)", k, v))
		} else if ov != v {
			out = append(out, fmt.Sprintf("env/arg %s changed: %q → %q", k, ov, v))
		}
	}
	for k := range ma {
		if _, ok := mb[k]; !ok {
			out = append(out, fmt.Sprintf("env/arg %s removed", k))
		}
	}
	slices.Sort(out)
	return out
}

// fileDiff lists the context files that were added, removed or modified.
func fileDiff(a, b map[string]string) []string {
	var added, removed, modified []string
	for p, s := range b {
		if os, ok := a[p]; !ok {
			added = append(added, p)
		} else if os != s {
			modified = append(modified, p)
		}
	}
	for p := range a {
		if _, ok := b[p]; !ok {
			removed = append(removed, p)
		}
	}
	var out []string
	for _, g := range []struct {
		what  string
		paths []string
	}{{"modified", modified}, {"added", added}, {"removed", removed}} {
		if len(g.paths) == 0 {
			continue
		}
		slices.Sort(g.paths)
		more := ""
		if len(g.paths) > 10 {
			more = fmt.Sprintf(" and %d more", len(g.paths)-10)
			g.paths = g.paths[:10]
		}
		out = append(out, fmt.Sprintf("context files %s: %s%s", g.what, strings.Join(g.paths, ", "), more))
	}
	if len(out) == 0 {
		out = append(out, "context file metadata changed (mode or type)")
	}
	return out
}
