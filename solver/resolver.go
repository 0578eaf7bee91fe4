package solver

import (
	"context"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/solver/dag"
)

// Resolver resolves image references for the frontend by pulling them into
// the store (per Policy), so that the build itself never pulls again.
type Resolver struct {
	Store    *cache.Store
	Policy   cache.PullPolicy
	Progress *Progress
}

// Resolve implements frontend.ImageResolver.
func (r *Resolver) Resolve(ctx context.Context, ref, platform string) (string, dag.Digest, *v1.ConfigFile, error) {
	p, err := r.Store.Pull(ctx, ref, platform, r.Policy)
	if err != nil {
		return "", "", nil, err
	}
	return p.Name, p.Digest, p.Config, nil
}
