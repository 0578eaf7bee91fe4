//go:build linux

package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

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
	return im.pull(ctx, ref, platform, policy, false)
}

// PullLazy is Pull that downloads no layer: each one the store lacks is
// recorded lazily, with the image's repository as its source, and fetched
// when a step, `kiln run` or an export first reads it (Layers.Ensure).
// The build's FROM resolves through it.
func (im *Images) PullLazy(ctx context.Context, ref, platform string, policy PullPolicy) (Pulled, error) {
	return im.pull(ctx, ref, platform, policy, true)
}

func (im *Images) pull(ctx context.Context, ref, platform string, policy PullPolicy, lazy bool) (Pulled, error) {
	r, err := imageref.Parse(ref)
	if err != nil {
		return Pulled{}, err
	}
	canonical := imageref.Canonical(r)
	if policy != PullAlways {
		if rec, err := im.names.Get(ctx, ref); err == nil {
			if layers, cfg, err := im.Layers(ctx, rec.Digest); err == nil && (lazy || im.layers.Ensure(ctx, layers) == nil) {
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
	client := registry.Default
	if r, err = client.ParseReference(ref); err != nil {
		return Pulled{}, err
	}
	img, resolved, err := client.Fetch(ctx, r, *p)
	if err != nil {
		return Pulled{}, err
	}
	var d digest.Digest
	if lazy {
		d, err = im.ImportLazy(ctx, img, LayerSource{Repo: r.Context().Name()})
	} else {
		if err := im.fetchLayers(ctx, img, client.Jobs(), client.Retries()); err != nil {
			return Pulled{}, registry.PullError(r, err)
		}
		d, err = im.Import(ctx, img)
	}
	if err != nil {
		return Pulled{}, registry.PullError(r, err)
	}
	if _, isDigest := r.(name.Digest); !isDigest {
		if err := im.names.TagDurable(ctx, canonical, d); err != nil {
			return Pulled{}, err
		}
	}
	if err := im.RecordRepoDigest(ctx, d, CanonicalRepo(r.Context())+"@"+resolved.String()); err != nil {
		return Pulled{}, err
	}
	_, cfg, err := im.Layers(ctx, d)
	if err != nil {
		return Pulled{}, fmt.Errorf("pulling %s: %w", ref, err)
	}
	return Pulled{Name: canonical, Digest: d, Config: cfg}, nil
}

// fetchLayers stores the layers of img the store lacks, jobs at once, each
// tried again (after a pause) up to retries times when its transfer breaks
// off: a reset or stall mid-blob is not retried below us, only failed
// requests are. A layer is recorded only once its digests check out, so a
// failure leaves nothing partial behind.
func (im *Images) fetchLayers(ctx context.Context, img v1.Image, jobs, retries int) error {
	cfg, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading image config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("reading image layers: %w", err)
	}
	if len(layers) != len(cfg.RootFS.DiffIDs) {
		return fmt.Errorf("image has %d layers but its config lists %d diff_ids", len(layers), len(cfg.RootFS.DiffIDs))
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(jobs, 1))
	seen := map[digest.Digest]bool{}
	for i, l := range layers {
		diffID := digest.Digest(cfg.RootFS.DiffIDs[i].String())
		if seen[diffID] {
			continue
		}
		seen[diffID] = true
		if im.layers.Present(ctx, diffID) {
			if d, err := l.Digest(); err == nil {
				registry.Report(ctx, registry.Event{Op: "pull", ID: d.String(), Done: true, Exists: true})
			}
			continue
		}
		g.Go(func() error {
			var err error
			for try := 0; ; try++ {
				if err = im.fetchLayer(gctx, l, diffID); err == nil || try >= retries || gctx.Err() != nil || !registry.Retryable(err) {
					return err
				}
				select {
				case <-time.After(time.Duration(try+1) * 500 * time.Millisecond):
				case <-gctx.Done():
					return err
				}
			}
		})
	}
	return g.Wait()
}

func (im *Images) fetchLayer(ctx context.Context, l v1.Layer, diffID digest.Digest) error {
	d, err := l.Digest()
	if err != nil {
		return fmt.Errorf("layer %s: %w", diffID, err)
	}
	mt, err := l.MediaType()
	if err != nil {
		return fmt.Errorf("layer %s: %w", d, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("fetching layer %s: %w", d, err)
	}
	defer rc.Close()
	_, err = im.layers.Import(ctx, rc, digest.Digest(d.String()), diffID, string(mt))
	return err
}

// CanonicalRepo is repo's name in docker's spelling
// ("docker.io/library/busybox"), for repository digests.
func CanonicalRepo(repo name.Repository) string {
	s := repo.Name()
	if rest, ok := strings.CutPrefix(s, name.DefaultRegistry+"/"); ok {
		s = "docker.io/" + rest
	}
	return s
}

// repoDigestsOf is the directory (see repoDigestsDir) that holds, per image ID (config digest hex), one file per
// repository digest ("REPO@sha256:..." of a pull or a push): docker's
// RepoDigests. They are a record of where the image went, not a root for
// GC; a file per entry so concurrent pushes never lose each other's.
func (im *Images) repoDigestsOf(id digest.Digest) string {
	return filepath.Join(repoDigestsDir.in(filepath.Dir(im.names.dir)), id.Hex())
}

// RecordRepoDigest records that the image with local manifest d is
// repoDigest (REPO@sha256:...) at a registry.
func (im *Images) RecordRepoDigest(ctx context.Context, d digest.Digest, repoDigest string) error {
	id, err := im.ID(ctx, d)
	if err != nil {
		return err
	}
	dir := im.repoDigestsOf(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("recording %s: %w", repoDigest, err)
	}
	path := filepath.Join(dir, digest.FromBytes([]byte(repoDigest)).Hex())
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := writeFile(im.names.tmp, path, []byte(repoDigest), atomicOnly); err != nil {
		return fmt.Errorf("recording %s: %w", repoDigest, err)
	}
	return nil
}

// RepoDigests are the repository digests recorded for the image with
// local manifest d, sorted.
func (im *Images) RepoDigests(ctx context.Context, d digest.Digest) ([]string, error) {
	id, err := im.ID(ctx, d)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(im.repoDigestsOf(id))
	if errors.Is(err, os.ErrNotExist) {
		return []string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading repository digests: %w", err)
	}
	out := []string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(im.repoDigestsOf(id), e.Name()))
		if err == nil {
			out = append(out, string(b))
		}
	}
	sort.Strings(out)
	return out, nil
}
