//go:build linux

package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/registry"
)

// LayerSource is where a lazy layer's blob is fetched from (see
// docs/lazy-layers.md): a registry repository ("host/path") that serves
// it by digest. Only the name is kept; credentials come from
// registry.Default when the blob is fetched.
type LayerSource struct {
	Repo string `json:"repo"`
}

// Record makes l known to the store without its content: a lazy layer,
// fetched from src by Ensure when something first reads it. A layer
// already recorded (present or lazy) is left as it is.
func (ls *Layers) Record(ctx context.Context, l Layer, src LayerSource) error {
	if err := errors.Join(l.DiffID.Validate(), l.Digest.Validate()); err != nil {
		return fmt.Errorf("recording layer %s: %w", l.DiffID, err)
	}
	if src.Repo == "" {
		return fmt.Errorf("recording layer %s: no source repository", l.DiffID)
	}
	if _, err := os.Stat(ls.recordPath(l.DiffID)); err == nil {
		return nil
	}
	l.MediaType = ociLayerType(l.MediaType)
	return writeJSON(ls.tmp, ls.recordPath(l.DiffID), layerRecord{Layer: l, Remote: &src}, true)
}

// ImportLazy is Images.Import for an image read from a registry: its
// config and manifest are stored, but each layer the store lacks is only
// recorded, lazily, with src (the image's repository) to fetch it from.
func (im *Images) ImportLazy(ctx context.Context, img v1.Image, src LayerSource) (digest.Digest, error) {
	return im.importImage(ctx, img, &src)
}

// Present reports whether the layer with diffID has its content in the
// store: its record, blob (unless built here) and snapshot.
func (ls *Layers) Present(ctx context.Context, diffID digest.Digest) bool {
	var l Layer
	if diffID.Validate() != nil || readJSON(ls.recordPath(diffID), &l) != nil {
		return false
	}
	return ls.present(ctx, l)
}

func (ls *Layers) present(ctx context.Context, l Layer) bool {
	if !l.FromSnapshot() && !ls.blobs.has(ctx, l.Digest) {
		return false
	}
	_, err := os.Stat(ls.SnapshotDir(l.DiffID))
	return err == nil
}

// Lazy reports whether the layer with diffID is recorded with a source
// but its content is not (yet) in the store.
func (ls *Layers) Lazy(ctx context.Context, diffID digest.Digest) bool {
	var r layerRecord
	if diffID.Validate() != nil || readJSON(ls.recordPath(diffID), &r) != nil {
		return false
	}
	return r.Remote != nil && !ls.present(ctx, r.Layer)
}

// Ensure makes the content of every one of layers present, fetching the
// lazy ones from their sources (verified by Import: the blob digest and
// the diffID), several at once. Every reader of a layer's snapshot or
// blob calls it first. A layer is fetched once however many callers ask
// at the same time, in this process (a flight per diffID) and across
// processes (a flock per diffID).
func (ls *Layers) Ensure(ctx context.Context, layers []Layer) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(registry.Default.Jobs(), 1))
	seen := map[digest.Digest]bool{}
	for _, l := range layers {
		if seen[l.DiffID] || ls.present(ctx, l) {
			continue
		}
		seen[l.DiffID] = true
		g.Go(func() error {
			_, err, _ := ls.flights.Do(string(l.DiffID), func() (any, error) {
				return nil, ls.ensure(gctx, l.DiffID)
			})
			return err
		})
	}
	return g.Wait()
}

// OpenBlob opens blob d of the layer with diffID (its own blob, or one an
// export made from it), fetching the layer first if it is lazy and the
// blob is not here. diffID "" opens d as it is.
func (ls *Layers) OpenBlob(ctx context.Context, diffID, d digest.Digest) (io.ReadCloser, error) {
	rc, err := ls.blobs.Open(ctx, d)
	if err == nil || !IsNotFound(err) || diffID == "" || !ls.Lazy(ctx, diffID) {
		return rc, err
	}
	l, err := ls.Get(ctx, diffID)
	if err != nil {
		return nil, err
	}
	if err := ls.Ensure(ctx, []Layer{l}); err != nil {
		return nil, err
	}
	return ls.blobs.Open(ctx, d)
}

// EnsureDirs is Ensure, then the layers' snapshots, bottom first: an
// overlay's lower dirs.
func (ls *Layers) EnsureDirs(ctx context.Context, layers []Layer) ([]string, error) {
	if err := ls.Ensure(ctx, layers); err != nil {
		return nil, err
	}
	return ls.SnapshotDirs(layers), nil
}

func (ls *Layers) ensure(ctx context.Context, diffID digest.Digest) error {
	unlock, err := lockFile(ctx, filepath.Join(ls.locks, "layer-"+diffID.Hex()), "layer "+string(diffID))
	if err != nil {
		return err
	}
	defer unlock()
	var r layerRecord
	if err := readJSON(ls.recordPath(diffID), &r); err != nil {
		return fmt.Errorf("layer %s: %w", diffID, err)
	}
	if ls.present(ctx, r.Layer) {
		return nil // another process fetched it while we waited
	}
	if r.Remote == nil {
		return fmt.Errorf("layer %s: content missing and no source to fetch it from: %w", diffID, ErrNotFound)
	}
	retries := registry.Default.Retries()
	for try := 0; ; try++ {
		err = ls.fetchRemote(ctx, r)
		if err == nil || try >= retries || ctx.Err() != nil || !registry.Retryable(err) {
			return err
		}
		select {
		case <-time.After(time.Duration(try+1) * 500 * time.Millisecond):
		case <-ctx.Done():
			return err
		}
	}
}

// fetchRemote downloads r's blob from its repository into the store.
func (ls *Layers) fetchRemote(ctx context.Context, r layerRecord) error {
	client := registry.Default
	ref, err := client.ParseReference(r.Remote.Repo + "@" + string(r.Digest))
	if err != nil {
		return fmt.Errorf("layer %s: %w", r.DiffID, err)
	}
	d, ok := ref.(name.Digest)
	if !ok {
		return fmt.Errorf("layer %s: source %q is not a repository", r.DiffID, r.Remote.Repo)
	}
	rl, err := remote.Layer(d, client.Options(ctx, ref)...)
	if err != nil {
		return fmt.Errorf("fetching layer %s from %s: %w", r.Digest, r.Remote.Repo, err)
	}
	rc, err := rl.Compressed()
	if err != nil {
		return fmt.Errorf("fetching layer %s from %s: %w", r.Digest, r.Remote.Repo, err)
	}
	defer rc.Close()
	registry.Report(ctx, registry.Event{Op: "pull", ID: string(r.Digest), Total: r.Size})
	if _, err := ls.Import(ctx, rc, r.Digest, r.DiffID, r.MediaType); err != nil {
		return fmt.Errorf("fetching layer %s from %s: %w", r.Digest, r.Remote.Repo, err)
	}
	registry.Report(ctx, registry.Event{Op: "pull", ID: string(r.Digest), Complete: r.Size, Total: r.Size, Done: true})
	return nil
}
