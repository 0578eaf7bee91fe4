//go:build linux

package solver

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/store"
)

// Resolver resolves image references for the frontend by pulling them into
// the store (per Policy), so that the build itself never pulls again.
type Resolver struct {
	Images   *store.Images
	Policy   store.PullPolicy
	Progress *Progress
}

// Resolve implements frontend.ImageResolver.
func (r *Resolver) Resolve(ctx context.Context, ref, platform string) (string, digest.Digest, *v1.ConfigFile, error) {
	p, err := r.Images.PullLazy(ctx, ref, platform, r.Policy) // layers fetched when a step reads them
	if err != nil {
		return "", "", nil, err
	}
	return p.Name, p.Digest, p.Config, nil
}

// HealthStartInterval reads the stored image's Healthcheck.StartInterval
// from its raw config (go-containerregistry's type has no such field).
func (r *Resolver) HealthStartInterval(ctx context.Context, manifest digest.Digest) (time.Duration, error) {
	img, err := r.Images.Get(ctx, manifest)
	if err != nil {
		return 0, err
	}
	b, err := img.RawConfigFile()
	if err != nil {
		return 0, err
	}
	var c struct {
		Config struct {
			Healthcheck struct {
				StartInterval time.Duration `json:"StartInterval"`
			} `json:"Healthcheck"`
		} `json:"config"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return 0, fmt.Errorf("image config %s: %w", manifest, err)
	}
	return c.Config.Healthcheck.StartInterval, nil
}
