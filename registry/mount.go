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

type blobSourceKey struct{}

// WithBlobSources tells pushes done with ctx where particular blobs are
// known to be (blob digest → "host/repo"s: a base image's layers in the
// repositories it was pulled from); those blobs are mounted from the first
// of them on the push's registry, the others from WithMountFrom's.
func WithBlobSources(ctx context.Context, sources map[string][]string) context.Context {
	return context.WithValue(ctx, blobSourceKey{}, sources)
}

// blobSources are ctx's WithBlobSources parsed, those on ref's registry
// and not ref's own repository.
func (c *Client) blobSources(ctx context.Context, ref name.Reference) map[v1.Hash]name.Reference {
	srcs, _ := ctx.Value(blobSourceKey{}).(map[string][]string)
	out := map[v1.Hash]name.Reference{}
	for d, repos := range srcs {
		h, err := v1.NewHash(d)
		if err != nil {
			continue
		}
		for _, repo := range repos {
			src, err := c.ParseReference(repo)
			if err == nil && src.Context().RegistryStr() == ref.Context().RegistryStr() && src.Context().RepositoryStr() != ref.Context().RepositoryStr() {
				out[h] = src
				break
			}
		}
	}
	return out
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

// mountImage offers its layers for a cross-repository mount: from the
// repository known to hold each blob (blobs), else from src (nil: none).
type mountImage struct {
	v1.Image
	src   name.Reference
	blobs map[v1.Hash]name.Reference
}

func (m mountImage) mountable(l v1.Layer) v1.Layer {
	if d, err := l.Digest(); err == nil {
		if src, ok := m.blobs[d]; ok {
			return &remote.MountableLayer{Layer: l, Reference: src}
		}
	}
	if m.src == nil {
		return l
	}
	return &remote.MountableLayer{Layer: l, Reference: m.src}
}

func (m mountImage) Layers() ([]v1.Layer, error) {
	ls, err := m.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		out[i] = m.mountable(l)
	}
	return out, nil
}

// ConfigLayer offers the config blob for a mount too.
func (m mountImage) ConfigLayer() (v1.Layer, error) {
	l, err := partial.ConfigLayer(m.Image)
	if err != nil {
		return nil, err
	}
	return m.mountable(l), nil
}
