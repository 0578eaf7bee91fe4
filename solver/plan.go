//go:build linux

package solver

import (
	"context"

	"golang.org/x/sync/errgroup"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/solver/dag"
)

// Keys are computed before anything is produced: a step's key needs its
// inputs' keys and the context files it reads, never their layers. With a
// remote cache this lets a step that hits skip its inputs altogether: if
// the last step of the final stage is an imported entry, nothing before it
// is fetched or run.

type planState struct {
	key  digest.Digest
	err  error
	done chan struct{}
}

// keyOf is v's cache key, computed once per Solver. Vertices whose result
// is a directory (the context, a heredoc, a download) are solved for it:
// that is how their key is known.
func (s *Solver) keyOf(ctx context.Context, v *dag.Vertex) (digest.Digest, error) {
	switch v.Op.(type) {
	case *dag.LocalOp, *dag.ScratchOp, *dag.InlineOp, *dag.HTTPOp:
		st := s.solve(ctx, v)
		return st.key, st.err
	}
	s.mu.Lock()
	if s.plans == nil {
		s.plans = map[*dag.Vertex]*planState{}
	}
	ps, ok := s.plans[v]
	if !ok {
		ps = &planState{done: make(chan struct{})}
		s.plans[v] = ps
	}
	s.mu.Unlock()
	if !ok {
		ps.key, ps.err = s.computeKey(ctx, v)
		close(ps.done)
	}
	select {
	case <-ps.done:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return ps.key, ps.err
}

// computeKey is dag.Key over v's op, its inputs' keys and the digest of
// what it reads from the context; it records the step for explain.
func (s *Solver) computeKey(ctx context.Context, v *dag.Vertex) (digest.Digest, error) {
	keys := make([]digest.Digest, len(v.Inputs))
	g, gctx := errgroup.WithContext(ctx)
	for i, in := range v.Inputs {
		g.Go(func() (err error) {
			keys[i], err = s.keyOf(gctx, in)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return "", err
	}
	var files map[string]string
	if s.rec != nil {
		files = map[string]string{}
	}
	content, err := s.contentDigest(ctx, v, files)
	if err != nil {
		return "", stepError(v, err)
	}
	key, err := dag.Key(v.Op, keys, content)
	if err != nil {
		return "", err
	}
	if len(files) == 0 {
		files = nil
	}
	s.rec.add(v, key, files, content, keys)
	return key, nil
}

// solveInputs produces v's inputs, all at once; no execution slot is held
// while waiting.
func (s *Solver) solveInputs(ctx context.Context, v *dag.Vertex) ([]*state, error) {
	inputs := make([]*state, len(v.Inputs))
	g, gctx := errgroup.WithContext(ctx)
	for i, in := range v.Inputs {
		g.Go(func() error {
			inputs[i] = s.solve(gctx, in)
			return inputs[i].err
		})
	}
	return inputs, g.Wait()
}
