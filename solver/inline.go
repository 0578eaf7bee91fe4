//go:build linux

package solver

import (
	"fmt"
	"os"
	"path"
	"path/filepath"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/kiln-build/kiln/solver/dag"
)

// materialize writes an InlineOp's files (COPY <<EOF) into a store temp
// dir, which copies then read like a build context. Solve removes it.
func (s *Solver) materialize(v *dag.Vertex, op *dag.InlineOp) (string, error) {
	dir, err := s.store.Scratch.Dir("inline-")
	if err != nil {
		return "", err
	}
	for _, f := range op.Files {
		p, err := securejoin.SecureJoin(dir, path.Clean("/"+f.Name))
		if err != nil {
			return "", err
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		mode := os.FileMode(0o644)
		if f.Mode != 0 {
			mode = os.FileMode(f.Mode)
		}
		if err := os.WriteFile(p, []byte(f.Data), mode); err != nil {
			return "", fmt.Errorf("inline file %s: %w", f.Name, err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			return "", err
		}
	}
	s.mu.Lock()
	s.dirs[v] = dir
	s.mu.Unlock()
	return dir, nil
}

// dirOf is the host directory of a LocalOp, a materialised InlineOp or a
// downloaded HTTPOp.
func (s *Solver) dirOf(v *dag.Vertex) (string, bool) {
	switch op := v.Op.(type) {
	case *dag.LocalOp:
		return op.Dir, true
	case *dag.InlineOp, *dag.HTTPOp:
		s.mu.Lock()
		defer s.mu.Unlock()
		d, ok := s.dirs[v]
		return d, ok
	}
	return "", false
}

// removeDirs deletes the materialised inline and download dirs.
func (s *Solver) removeDirs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for v, d := range s.dirs {
		os.RemoveAll(d) // only materialised dirs are in the map
		delete(s.dirs, v)
	}
}
