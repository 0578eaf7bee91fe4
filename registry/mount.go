package registry

import (
	"context"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

type mountKey struct{}

// WithMountFrom tells pushes done with ctx which repositories
// ("host/repo", e.g. where the image was pulled from or pushed to before)
// may already hold its layers: a push to another repository of the same
// registry asks it to mount each blob from there instead of uploading it.
// A registry that cannot mount answers with a normal upload.
func WithMountFrom(ctx context.Context, repos ...string) context.Context {
	return context.WithValue(ctx, mountKey{}, repos)
}

// mountSource is the first repository of ctx's that is on ref's registry
// and is not ref's own.
func (c *Client) mountSource(ctx context.Context, ref name.Reference) (name.Reference, bool) {
	repos, _ := ctx.Value(mountKey{}).([]string)
	for _, r := range repos {
		src, err := c.ParseReference(r)
		if err != nil {
			continue
		}
		if src.Context().RegistryStr() == ref.Context().RegistryStr() && src.Context().RepositoryStr() != ref.Context().RepositoryStr() {
			return src, true
		}
	}
	return nil, false
}

// mountImage offers its layers for a cross-repository mount from src.
type mountImage struct {
	v1.Image
	src name.Reference
}

func (m mountImage) Layers() ([]v1.Layer, error) {
	ls, err := m.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		out[i] = &remote.MountableLayer{Layer: l, Reference: m.src}
	}
	return out, nil
}

// ConfigLayer offers the config blob for a mount too.
func (m mountImage) ConfigLayer() (v1.Layer, error) {
	l, err := partial.ConfigLayer(m.Image)
	if err != nil {
		return nil, err
	}
	return &remote.MountableLayer{Layer: l, Reference: m.src}, nil
}
