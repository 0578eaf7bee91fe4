//go:build linux

package solver

import (
	"bytes"
	"context"
	"strings"

	"github.com/kiln-build/kiln/executor/fscopy"
	"github.com/kiln-build/kiln/solver/dag"
	"github.com/kiln-build/kiln/store"
)

// reuseFor finds what a COPY from the build context that missed the cache
// can take from its last run: the snapshot the same step (same slot, same
// instruction, over the same base layers) made in the previous build of
// this target, and the context files that are the same now as then (same
// description: type, mode, owner, size, sha256, xattrs). The copier links
// those instead of copying them when the old snapshot holds them with the
// metadata the copy would give them. nil when there is nothing to reuse.
func (s *Solver) reuseFor(ctx context.Context, v *dag.Vertex, base []store.Layer) *fscopy.Reuse {
	r := s.rec
	if r == nil {
		return nil
	}
	sl := slot(v)
	r.mu.Lock()
	cur := r.cur.Steps[sl]
	prev := r.prevSteps(ctx)[sl]
	r.mu.Unlock()
	if cur == nil || prev == nil || prev.Key == cur.Key || !bytes.Equal(prev.Op, cur.Op) ||
		len(prev.Files) == 0 || len(cur.Files) == 0 {
		return nil
	}
	layers, err := s.store.Records.Lookup(ctx, prev.Key)
	if err != nil || len(layers) != len(base)+1 {
		return nil
	}
	for i, l := range base {
		if layers[i].DiffID != l.DiffID {
			return nil // another base: the same paths may hold other things
		}
	}
	files := map[string]bool{}
	for rel, d := range cur.Files {
		if strings.HasPrefix(d, "f ") && prev.Files[rel] == d {
			files[rel] = true
		}
	}
	if len(files) == 0 {
		return nil
	}
	last := layers[len(layers)-1]
	if !s.store.Layers.Present(ctx, last.DiffID) {
		return nil // lazy: not worth fetching to save hashing
	}
	return &fscopy.Reuse{Snapshot: s.store.Layers.SnapshotDir(last.DiffID), Files: files}
}
