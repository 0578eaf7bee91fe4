//go:build linux

package solver

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/solver/dag"
	"github.com/kiln-build/kiln/store"
)

// Options tune a Solver.
type Options struct {
	Jobs    int  // ops executed at once; 0 = number of CPUs
	NoCache bool // execute every op even if the store has its result
	// History names this build (Dockerfile and target) so its steps are
	// recorded for the next build of the same name; Explain then says why
	// each step that misses the cache missed it.
	History string
	Explain bool
	// NoCacheFilter lists stages (by name, any case) whose steps are
	// executed even if cached (--no-cache-filter).
	NoCacheFilter []string
	// Secrets are the values RUN --mount=type=secret can use, by id.
	Secrets map[string]Secret
	// SSH are the SSH agent sockets RUN --mount=type=ssh can use, by id.
	SSH map[string]string
	// Build bounds each step: pids and memory of a RUN, the size of what an
	// ADD extracts ($KILN_ROOT/config.json's "build").
	Build    store.BuildConfig
	Progress *Progress // nil = no output
	// Remote is the build cache of other machines (--cache-from), asked
	// after the store and before executing; nil = none (remote.go).
	Remote RemoteCache
	// Produced, if set, is told of every layer chain a step executed
	// made, as soon as it is made (the cache export compresses it then).
	Produced func(layers []store.Layer)
}

// Solver executes build graphs against a store.
type Solver struct {
	store    Roles
	executor Executor
	opts     Options
	sem      chan struct{}

	mu     sync.Mutex
	states map[*dag.Vertex]*state
	keys   map[digest.Digest]*keyState
	dirs   map[*dag.Vertex]string // materialised InlineOp dirs

	statOnce sync.Once
	stat     *store.StatCache

	rec *recorder // nil unless Options.History is set

	plans  map[*dag.Vertex]*planState // keys, computed before layers (plan.go)
	remote remoteState                // what the remote cache gave (remote.go)
}

// statCache loads the store's stat cache on first use.
func (s *Solver) statCache() *store.StatCache {
	s.statOnce.Do(func() { s.stat = s.store.StatCaches.StatCache() })
	return s.stat
}

type state struct {
	once   sync.Once
	layers []store.Layer
	key    digest.Digest
	err    error
}

// Stats counts what a solve did.
type Stats struct {
	Executed, Cached int
}

// New returns a Solver over the roles of st that runs steps with package
// executor.
func New(st *store.Store, opts Options) *Solver {
	return NewWith(rolesOf(st), linuxExecutor{}, opts)
}

// NewWith returns a Solver over any store roles and executor.
func NewWith(roles Roles, exec Executor, opts Options) *Solver {
	if opts.Jobs <= 0 {
		opts.Jobs = runtime.NumCPU()
	}
	s := &Solver{store: roles, executor: exec, opts: opts, sem: make(chan struct{}, opts.Jobs), states: map[*dag.Vertex]*state{}, keys: map[digest.Digest]*keyState{}, dirs: map[*dag.Vertex]string{}}
	if opts.History != "" {
		s.rec = newRecorder(roles.History, opts.History)
	}
	return s
}

// Solve builds root and returns its layer chain, bottom first.
func (s *Solver) Solve(ctx context.Context, root *dag.Vertex) ([]store.Layer, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer s.removeDirs()
	st := s.solve(ctx, root)
	if s.stat != nil {
		// Even a failed build learned file sums worth keeping.
		if err := s.stat.Save(); err != nil && st.err == nil {
			return nil, err
		}
	}
	if st.err != nil {
		return nil, st.err
	}
	if err := s.rec.save(ctx); err != nil {
		return nil, err
	}
	if _, ok := root.Op.(*dag.LocalOp); ok {
		return nil, errors.New("the build's result is a local directory, not an image")
	}
	return st.layers, nil
}

func (s *Solver) state(v *dag.Vertex) *state {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.states[v]
	if !ok {
		st = &state{}
		s.states[v] = st
	}
	return st
}

// solve runs v once per Solver, whoever asks first.
func (s *Solver) solve(ctx context.Context, v *dag.Vertex) *state {
	st := s.state(v)
	st.once.Do(func() { st.layers, st.key, st.err = s.build(ctx, v) })
	return st
}

func (s *Solver) build(ctx context.Context, v *dag.Vertex) ([]store.Layer, digest.Digest, error) {
	switch op := v.Op.(type) {
	case *dag.LocalOp, *dag.ScratchOp:
		// Nothing to run or report: a directory that is read where it is,
		// or the empty filesystem.
		key, err := dag.Key(v.Op, nil, "")
		return nil, key, err
	case *dag.InlineOp:
		key, err := dag.Key(v.Op, nil, "")
		if err == nil {
			_, err = s.materialize(v, op)
		}
		return nil, key, err
	case *dag.HTTPOp:
		sum, err := s.download(ctx, v, op)
		if err != nil {
			return nil, "", err
		}
		key, err := dag.Key(v.Op, nil, sum)
		return nil, key, err
	}
	s.opts.Progress.Queue(v) // the trace shows the wait for inputs and a slot
	// Inputs first, then the key (plan.go). With a remote cache the key
	// comes first: a step that hits needs none of its inputs (remote.go).
	var inputs []*state
	if s.opts.Remote == nil {
		var err error
		if inputs, err = s.solveInputs(ctx, v); err != nil {
			return nil, "", err
		}
	}
	key, err := s.keyOf(ctx, v)
	if err != nil {
		return nil, "", err
	}
	if inputs == nil && !s.hitWithoutInputs(ctx, v, key) {
		if inputs, err = s.solveInputs(ctx, v); err != nil {
			return nil, "", err
		}
	}
	p := s.opts.Progress.Start(v)
	p.SetKey(key)
	// Vertices with the same key (the same FROM in two stages, a step two
	// targets share) are produced once per build.
	s.mu.Lock()
	ks, ok := s.keys[key]
	if !ok {
		ks = &keyState{}
		s.keys[key] = ks
	}
	s.mu.Unlock()
	first := false
	ks.once.Do(func() {
		first = true
		ks.layers, ks.err = s.produce(ctx, v, key, inputs, p)
		if errors.Is(ks.err, errNeedInputs) { // the remote entry could not be fetched
			if inputs, ks.err = s.solveInputs(ctx, v); ks.err == nil {
				ks.layers, ks.err = s.produce(ctx, v, key, inputs, p)
			}
		}
	})
	if !first && ks.err == nil {
		p.Cached()
	}
	return ks.layers, key, ks.err
}

type keyState struct {
	once   sync.Once
	layers []store.Layer
	err    error
}

// produce finds key's result in the store or executes v to make it. A lock
// on the key makes concurrent builds on one store execute it once.
func (s *Solver) produce(ctx context.Context, v *dag.Vertex, key digest.Digest, inputs []*state, p *Step) ([]store.Layer, error) {
	hit := func() ([]store.Layer, bool) {
		if s.opts.NoCache || s.noCacheFor(v) {
			return nil, false
		}
		layers, err := s.store.Records.Lookup(ctx, key)
		if err != nil {
			return nil, false
		}
		p.Cached()
		s.store.Records.Touch(ctx, key) // GC collects the records unused the longest
		return layers, true
	}
	if layers, ok := hit(); ok {
		return layers, nil
	}
	unlock, err := s.store.Records.Lock(ctx, key)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if layers, ok := hit(); ok { // another build made it while we waited
		return layers, nil
	}
	if layers, ok := s.remoteHit(ctx, v, key, p); ok {
		return layers, nil
	}
	if inputs == nil && len(v.Inputs) > 0 {
		return nil, errNeedInputs
	}
	if s.opts.Explain && s.rec != nil {
		fmt.Fprintf(p, "cache miss: %s\n", s.explainMiss(ctx, v, key))
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	start := time.Now()
	p.Running()
	layers, err := s.exec(ctx, v, inputs, p)
	<-s.sem
	p.Stopped()
	if err != nil {
		p.Error(err)
		return nil, stepError(v, err, p)
	}
	if err := s.store.Records.Put(ctx, key, layers); err != nil {
		return nil, err
	}
	if s.opts.Produced != nil {
		s.opts.Produced(layers)
	}
	if _, pulled := v.Op.(*dag.ImageOp); !pulled && len(layers) > 0 {
		p.Added(layers[len(layers)-1].Size) // the one layer this step made
	}
	p.Done(time.Since(start))
	return layers, nil
}

// contentDigest is the digest of what v reads from a local directory
// (see localContent in hash.go); files, if not nil, gets each selected
// file's description.
func (s *Solver) contentDigest(ctx context.Context, v *dag.Vertex, files map[string]string) (digest.Digest, error) {
	return s.localContent(ctx, v, files)
}
