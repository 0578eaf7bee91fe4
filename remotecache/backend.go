//go:build linux

package remotecache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/registry"
)

// backend is where entries live: a registry repository or an OCI layout.
type backend interface {
	String() string
	// Tags lists every tag there (one listing, however paginated).
	Tags(ctx context.Context) ([]string, error)
	// Manifest reads the manifest tagged tag; ok is false if there is none.
	Manifest(ctx context.Context, tag string) (m *v1.Manifest, d digest.Digest, ok bool, err error)
	// Blob opens a blob (unverified: the caller verifies).
	Blob(ctx context.Context, d digest.Digest) (io.ReadCloser, error)
	// Write adds the images under their tags; blobs already there are not
	// uploaded again.
	Write(ctx context.Context, imgs map[string]v1.Image) error
	// PutBlob uploads one blob ahead of the images that name it, unless it
	// is there.
	PutBlob(ctx context.Context, l partial.CompressedLayer) error
}

// registryBackend is a repository in a registry, reached with the options
// of package registry (credentials, TLS, retries).
type registryBackend struct {
	repo name.Repository
	ref  name.Reference

	once  sync.Once
	reuse []remote.Option
}

// newRegistryBackend parses ref ("host/repo:tag"); the tag is the base
// of the entries' tags.
func newRegistryBackend(ref string) (*registryBackend, string, error) {
	r, err := registry.Default.ParseReference(ref)
	if err != nil {
		return nil, "", err
	}
	t, ok := r.(name.Tag)
	if !ok {
		return nil, "", fmt.Errorf("cache reference %s: give a tag, not a digest", ref)
	}
	return &registryBackend{repo: t.Context(), ref: r}, t.TagStr(), nil
}

func (b *registryBackend) String() string { return b.ref.String() }

// opts are the options of every request to the cache's repository. They
// share one puller and one pusher: without them each call would ping the
// registry and exchange a token again, and HEAD blobs already sent, which
// is most of what an export of small layers costs.
func (b *registryBackend) opts(ctx context.Context) []remote.Option {
	b.once.Do(func() {
		base := registry.Default.Options(context.Background(), b.ref)
		if p, err := remote.NewPuller(base...); err == nil {
			b.reuse = append(b.reuse, remote.Reuse(p))
		}
		if p, err := remote.NewPusher(base...); err == nil {
			b.reuse = append(b.reuse, remote.Reuse(p))
		}
	})
	return append(registry.Default.Options(ctx, b.ref), b.reuse...)
}

func (b *registryBackend) Tags(ctx context.Context) ([]string, error) {
	tags, err := remote.List(b.repo, b.opts(ctx)...)
	if err != nil {
		if isNotFound(err) { // no repository yet: an empty cache
			return nil, nil
		}
		return nil, fmt.Errorf("listing the cache %s: %w", b.repo, err)
	}
	return tags, nil
}

func (b *registryBackend) Manifest(ctx context.Context, tag string) (*v1.Manifest, digest.Digest, bool, error) {
	desc, err := remote.Get(b.repo.Tag(tag), b.opts(ctx)...)
	if err != nil {
		if isNotFound(err) {
			return nil, "", false, nil
		}
		return nil, "", false, fmt.Errorf("cache entry %s:%s: %w", b.repo, tag, err)
	}
	m, err := v1.ParseManifest(strings.NewReader(string(desc.Manifest)))
	if err != nil {
		return nil, "", false, fmt.Errorf("cache entry %s:%s: %w", b.repo, tag, err)
	}
	return m, digest.FromBytes(desc.Manifest), true, nil
}

func (b *registryBackend) Blob(ctx context.Context, d digest.Digest) (io.ReadCloser, error) {
	l, err := remote.Layer(b.repo.Digest(string(d)), b.opts(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("cache blob %s@%s: %w", b.repo, d, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("cache blob %s@%s: %w", b.repo, d, err)
	}
	return rc, nil
}

func (b *registryBackend) Write(ctx context.Context, imgs map[string]v1.Image) error {
	if len(imgs) == 0 {
		return nil
	}
	m := make(map[name.Reference]remote.Taggable, len(imgs))
	for tag, img := range imgs {
		m[b.repo.Tag(tag)] = img
	}
	if err := remote.MultiWrite(m, b.opts(ctx)...); err != nil {
		return fmt.Errorf("exporting the cache to %s: %w", b.repo, err)
	}
	return nil
}

func (b *registryBackend) PutBlob(ctx context.Context, l partial.CompressedLayer) error {
	vl, err := partial.CompressedToLayer(l)
	if err != nil {
		return err
	}
	return remote.WriteLayer(b.repo, vl, b.opts(ctx)...)
}

// isNotFound reports whether a registry answered 404 (or NAME_UNKNOWN).
func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}
