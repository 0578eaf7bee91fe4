//go:build linux

package solver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/solver/dag"
	"github.com/kiln-build/kiln/store"
)

// RemoteCache is the build cache of other machines (kiln build
// --cache-from): entries by cache key, each a layer chain, and the cache
// mounts they exported. Lookups read metadata only; Fetch downloads the
// layers the store lacks, verified, into the store.
type RemoteCache interface {
	Lookup(ctx context.Context, key digest.Digest) (RemoteEntry, bool)
	// LookupSlot is the last entry exported for a step slot ("[build 3]"),
	// for --explain-cache: a hint, never a hit.
	LookupSlot(ctx context.Context, slot string) (RemoteEntry, bool)
	Fetch(ctx context.Context, e RemoteEntry) ([]store.Layer, error)
	// ImportMount fills dir, the empty directory of cache mount id, if the
	// remote cache has it; false if it has not.
	ImportMount(ctx context.Context, id, dir string) (bool, error)
	// Sources name what is read, for messages.
	Sources() []string
}

// RemoteEntry is a remote cache entry: its key, the record of the step
// that made it on the exporting machine (a stepRecord, for explain), and
// the cache's own handle for Fetch.
type RemoteEntry struct {
	Key    digest.Digest
	Step   json.RawMessage
	Handle any
}

// errNeedInputs says that a step whose inputs were skipped (its key was a
// remote hit) must be executed after all: the entry could not be fetched.
var errNeedInputs = errors.New("step needs its inputs")

type remoteState struct {
	mu     sync.Mutex
	failed map[digest.Digest]bool   // entries that could not be fetched
	mounts map[string]string        // cache mount id → dir, as used (export)
	once   map[string]*sync.Once    // cache mount imports, by id
	notes  map[digest.Digest]string // why an entry was not used, for explain
}

// remoteOK reports whether the remote cache may answer for v.
func (s *Solver) remoteOK(v *dag.Vertex, key digest.Digest) bool {
	if s.opts.Remote == nil || s.opts.NoCache || s.noCacheFor(v) {
		return false
	}
	if _, pulled := v.Op.(*dag.ImageOp); pulled {
		return false // base images come from their registry
	}
	s.remote.mu.Lock()
	defer s.remote.mu.Unlock()
	return !s.remote.failed[key]
}

// hitWithoutInputs reports whether v's result can be had without its
// inputs: the store has it, or the remote cache has an entry for it.
func (s *Solver) hitWithoutInputs(ctx context.Context, v *dag.Vertex, key digest.Digest) bool {
	if s.opts.NoCache || s.noCacheFor(v) {
		return false
	}
	if _, err := s.store.Records.Lookup(ctx, key); err == nil {
		return true
	}
	if !s.remoteOK(v, key) {
		return false
	}
	_, ok := s.opts.Remote.Lookup(ctx, key)
	return ok
}

// remoteHit fetches key's layers from the remote cache into the store and
// records them under key, as if the step had run here. The caller holds
// key's lock, so concurrent builds on one store fetch once.
func (s *Solver) remoteHit(ctx context.Context, v *dag.Vertex, key digest.Digest, p *Step) ([]store.Layer, bool) {
	if !s.remoteOK(v, key) {
		return nil, false
	}
	e, ok := s.opts.Remote.Lookup(ctx, key)
	if !ok {
		return nil, false
	}
	layers, err := s.opts.Remote.Fetch(ctx, e)
	if err == nil {
		err = s.store.Records.Put(ctx, key, layers)
	}
	if err != nil {
		s.remote.mu.Lock()
		if s.remote.failed == nil {
			s.remote.failed = map[digest.Digest]bool{}
			s.remote.notes = map[digest.Digest]string{}
		}
		s.remote.failed[key] = true
		s.remote.notes[key] = err.Error()
		s.remote.mu.Unlock()
		fmt.Fprintf(p, "remote cache: %v (running the step instead)\n", err)
		return nil, false
	}
	p.Cached()
	return layers, true
}

// explainMiss says why v missed: against this store's last build, and
// against the remote cache if there is one.
func (s *Solver) explainMiss(ctx context.Context, v *dag.Vertex, key digest.Digest) string {
	local := s.rec.explain(ctx, v, key)
	if _, pulled := v.Op.(*dag.ImageOp); pulled || s.opts.Remote == nil {
		return local // a base image comes from its registry, never the cache
	}
	return local + "; remote cache: " + s.explainRemote(ctx, v, key)
}

func (s *Solver) explainRemote(ctx context.Context, v *dag.Vertex, key digest.Digest) string {
	s.remote.mu.Lock()
	note := s.remote.notes[key]
	s.remote.mu.Unlock()
	if note != "" {
		return "the entry could not be imported: " + note
	}
	from := strings.Join(s.opts.Remote.Sources(), ", ")
	sl := slot(v)
	e, ok := s.opts.Remote.LookupSlot(ctx, sl)
	var old stepRecord
	if !ok || json.Unmarshal(e.Step, &old) != nil {
		return fmt.Sprintf("no imported entry for its key, nor any for step %s, in %s", sl, from)
	}
	if old.Key == key {
		return fmt.Sprintf("no imported entry for its key in %s", from)
	}
	s.rec.mu.Lock()
	cur := s.rec.cur.Steps[sl]
	s.rec.mu.Unlock()
	if cur == nil {
		return fmt.Sprintf("no imported entry for its key in %s", from)
	}
	var why []string
	if old.Files == nil && cur.Files != nil && old.Content != cur.Content {
		why = append(why, "context files changed (the exported entry does not list them)")
		c := *cur
		c.Content = old.Content
		cur = &c
	}
	why = append(why, stepDiff(&old, cur)...)
	for i, in := range v.Inputs {
		if i < len(old.InputKeys) && i < len(cur.InputKeys) && old.InputKeys[i] != cur.InputKeys[i] {
			name := in.Name
			if name == "" {
				name = text(in)
			}
			why = append(why, "input changed: "+name)
		}
	}
	if len(why) == 0 {
		why = append(why, "its definition changed")
	}
	return fmt.Sprintf("no imported entry for its key; the last export of step %s differs: %s", sl, strings.Join(why, "; "))
}

// importMount fills the cache mount id's empty directory from the remote
// cache, once per build, before the first step that uses it.
func (s *Solver) importMount(ctx context.Context, id, dir string) {
	if s.opts.Remote == nil {
		return
	}
	s.remote.mu.Lock()
	if s.remote.once == nil {
		s.remote.once = map[string]*sync.Once{}
	}
	o, ok := s.remote.once[id]
	if !ok {
		o = &sync.Once{}
		s.remote.once[id] = o
	}
	s.remote.mu.Unlock()
	o.Do(func() {
		unlock, err := s.store.CacheMounts.Lock(ctx, id, 0)
		if err != nil {
			return
		}
		defer unlock()
		if !emptyDir(dir) {
			return // this machine's own content wins
		}
		s.opts.Remote.ImportMount(ctx, id, dir) // a mount that cannot be imported starts empty
	})
}

// useMount notes that the build used cache mount id at dir, for export.
func (s *Solver) useMount(id, dir string) {
	s.remote.mu.Lock()
	defer s.remote.mu.Unlock()
	if s.remote.mounts == nil {
		s.remote.mounts = map[string]string{}
	}
	s.remote.mounts[id] = dir
}

// CacheMountsUsed are the cache mounts the build used (id → directory),
// seeded ones (from=) aside: what --cache-to cache-mounts=true exports.
func (s *Solver) CacheMountsUsed() map[string]string {
	s.remote.mu.Lock()
	defer s.remote.mu.Unlock()
	out := map[string]string{}
	for id, dir := range s.remote.mounts {
		out[id] = dir
	}
	return out
}

// maxExportedFiles bounds the context files a cache entry lists for
// explain: a COPY of a big tree would make every entry megabytes.
const maxExportedFiles = 10000

// CacheResult is one step this build has the result of, for export.
type CacheResult struct {
	Key    digest.Digest
	Layers []store.Layer
	Slot   string
	Step   json.RawMessage // its stepRecord
	Final  bool            // a step of the final image's stage chain
}

// CacheResults are the steps of root's graph whose results this build
// produced or found (a step skipped because a later one hit is not
// among them). Call it after Solve.
func (s *Solver) CacheResults(root *dag.Vertex) []CacheResult {
	final := map[*dag.Vertex]bool{}
	for v := root; v != nil; {
		final[v] = true
		switch v.Op.(type) {
		case *dag.ExecOp, *dag.CopyOp, *dag.MkdirOp:
			v = v.Inputs[0]
		default:
			v = nil
		}
	}
	s.mu.Lock()
	states := make(map[*dag.Vertex]*state, len(s.states))
	for v, st := range s.states {
		states[v] = st
	}
	s.mu.Unlock()
	var out []CacheResult
	for v, st := range states {
		switch v.Op.(type) {
		case *dag.ExecOp, *dag.CopyOp, *dag.MkdirOp:
		default:
			continue
		}
		if st.err != nil || st.key == "" || len(st.layers) == 0 {
			continue
		}
		r := CacheResult{Key: st.key, Layers: st.layers, Slot: slot(v), Final: final[v]}
		if s.rec != nil {
			s.rec.mu.Lock()
			if sr := s.rec.cur.Steps[r.Slot]; sr != nil && sr.Key == st.key {
				if len(sr.Files) > maxExportedFiles {
					c := *sr
					c.Files = nil // the entry says that files changed, not which
					sr = &c
				}
				r.Step, _ = json.Marshal(sr)
			}
			s.rec.mu.Unlock()
		}
		out = append(out, r)
	}
	return out
}

// emptyDir reports whether dir exists and holds nothing.
func emptyDir(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	return errors.Is(err, io.EOF)
}
