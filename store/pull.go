//go:build linux

package store

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/imageref"
	"github.com/kiln-build/kiln/registry"
)

// PullPolicy says when to ask the registry.
type PullPolicy string

const (
	PullMissing PullPolicy = "missing" // use the store's copy if the name is there
	PullAlways  PullPolicy = "always"  // always resolve the tag against the registry
	PullNever   PullPolicy = "never"   // only the store
)

// Pulled is an image that is now in the store.
type Pulled struct {
	Name   string // canonical
	Digest digest.Digest
	Config *v1.ConfigFile
}

// Pull makes ref available in the store, fetching from its registry
// according to policy, and names it durably under its canonical name
// (unless it is a digest reference). platform is "os/arch[/variant]".
func (im *Images) Pull(ctx context.Context, ref, platform string, policy PullPolicy) (Pulled, error) {
	r, err := imageref.Parse(ref)
	if err != nil {
		return Pulled{}, err
	}
	canonical := imageref.Canonical(r)
	if policy != PullAlways {
		if rec, err := im.names.Get(ctx, ref); err == nil {
			if _, cfg, err := im.Layers(ctx, rec.Digest); err == nil {
				return Pulled{Name: canonical, Digest: rec.Digest, Config: cfg}, nil
			}
		}
		if policy == PullNever {
			return Pulled{}, fmt.Errorf("image %s is not in the local store and --pull=never was given: %w", ref, ErrNotFound)
		}
	}
	p, err := v1.ParsePlatform(platform)
	if err != nil {
		return Pulled{}, fmt.Errorf("platform %q: %w", platform, err)
	}
	if r, err = registry.Default.ParseReference(ref); err != nil {
		return Pulled{}, err
	}
	img, err := registry.Default.Image(ctx, r, *p)
	if err != nil {
		return Pulled{}, err
	}
	d, err := im.Import(ctx, img)
	if err != nil {
		return Pulled{}, fmt.Errorf("pulling %s: %w", ref, err)
	}
	if _, isDigest := r.(name.Digest); !isDigest {
		if err := im.names.TagDurable(ctx, canonical, d); err != nil {
			return Pulled{}, err
		}
	}
	_, cfg, err := im.Layers(ctx, d)
	if err != nil {
		return Pulled{}, fmt.Errorf("pulling %s: %w", ref, err)
	}
	return Pulled{Name: canonical, Digest: d, Config: cfg}, nil
}
