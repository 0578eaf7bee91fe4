//go:build linux

package solver

import (
	"context"
	"fmt"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/store"
)

// ImageRecords remember the image each image key made (store.Records).
type ImageRecords interface {
	// LookupImage is the image an earlier commit recorded under key
	// (store.ImageKey); it wraps store.ErrNotFound.
	LookupImage(ctx context.Context, key digest.Digest) (digest.Digest, error)
	PutImage(ctx context.Context, key, manifest digest.Digest) error
}

// ImageWriter writes an image's config and manifest (store.Images).
type ImageWriter interface {
	Commit(ctx context.Context, cfg *v1.ConfigFile, layers []store.Layer, extras ...store.ConfigExtras) (digest.Digest, error)
}

var (
	_ ImageRecords = (*store.Records)(nil)
	_ ImageWriter  = (*store.Images)(nil)
)

// Image is what a build made: the frontend's config (with its history)
// over the layers Solve returned.
type Image struct {
	Config v1.ConfigFile
	Extras store.ConfigExtras // what v1.ConfigFile has no field for
	Layers []store.Layer
}

// CommitOptions say how CommitImage stamps and reuses images.
type CommitOptions struct {
	NoCache bool       // always write a new image (a new creation time)
	Epoch   *time.Time // SOURCE_DATE_EPOCH: the image's and its new history entries' time
}

// CommitImage writes img to the store and returns its manifest digest,
// unless the same config over the same layers was committed before: then
// that image (and its ID) is reused, so a fully cached rebuild changes
// nothing, as with BuildKit. With an epoch the image is stamped with it
// (and is the same image every time).
func CommitImage(ctx context.Context, records ImageRecords, images ImageWriter, img Image, o CommitOptions) (digest.Digest, error) {
	cfg := img.Config
	key, err := store.ImageKey(&cfg, img.Layers, img.Extras)
	if err != nil {
		return "", err
	}
	if !o.NoCache && o.Epoch == nil {
		if d, err := records.LookupImage(ctx, key); err == nil {
			return d, nil
		}
	}
	now := time.Now().UTC()
	if o.Epoch != nil {
		now = *o.Epoch
	}
	stampConfig(&cfg, now)
	d, err := images.Commit(ctx, &cfg, img.Layers, img.Extras)
	if err != nil {
		return "", err
	}
	return d, records.PutImage(ctx, key, d)
}

// stampConfig sets the image's and its new history entries' creation time.
func stampConfig(cfg *v1.ConfigFile, now time.Time) {
	cfg.Created = v1.Time{Time: now}
	cfg.History = append([]v1.History(nil), cfg.History...) // the caller's stays as it was
	for i := range cfg.History {
		if cfg.History[i].Created.IsZero() {
			cfg.History[i].Created = v1.Time{Time: now}
		}
	}
}

// SourceDateEpoch is the image's creation time for reproducible builds:
// the SOURCE_DATE_EPOCH build arg (BuildKit's built-in), else env, the
// value of the environment variable; nil when neither is set.
func SourceDateEpoch(buildArgs map[string]string, env string) (*time.Time, error) {
	s, from := buildArgs["SOURCE_DATE_EPOCH"], "--build-arg"
	if s == "" {
		s, from = env, "the environment"
	}
	if s == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("SOURCE_DATE_EPOCH=%q (from %s) is not a Unix time: give whole seconds since 1970, e.g. $(git log -1 --format=%%ct)", s, from)
	}
	t := time.Unix(n, 0).UTC()
	return &t, nil
}
