//go:build linux

package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kiln-build/kiln/digest"
)

// Records are the build cache: what each cache key made, as a layer chain
// (keys/<key hex>.json) or, for an image key (ImageKey), an image
// (keys/<key hex>.image.json). A record is a hit only while everything it
// names is still in the store; GC collects the records unused the longest.
type Records struct {
	dir   string
	tmp   string
	locks string

	layers *Layers
	images *Images
}

// record is what a cache key resolves to: a chain of layers, bottom first.
type record struct {
	Layers  []digest.Digest `json:"layers"` // diffIDs
	Created time.Time       `json:"created"`
}

func (r *Records) path(key digest.Digest) string {
	return filepath.Join(r.dir, key.Hex()+".json")
}

func (r *Records) imagePath(key digest.Digest) string {
	return filepath.Join(r.dir, key.Hex()+".image.json")
}

// Lookup returns the layer chain recorded for key, if it and every layer
// it names are still in the store; else it wraps ErrNotFound.
func (r *Records) Lookup(ctx context.Context, key digest.Digest) ([]Layer, error) {
	if err := key.Validate(); err != nil {
		return nil, fmt.Errorf("cache key %s: %w", key, err)
	}
	var rec record
	if err := readJSON(r.path(key), &rec); err != nil {
		return nil, fmt.Errorf("cache key %s: %w", key, err)
	}
	out := make([]Layer, 0, len(rec.Layers))
	for _, id := range rec.Layers {
		l, err := r.layers.Get(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("cache key %s: %w", key, err)
		}
		out = append(out, l)
	}
	return out, nil
}

// Put records that key made layers. Like the layers a build makes, the
// record is not fsynced (see the package doc): a torn one is a miss.
func (r *Records) Put(ctx context.Context, key digest.Digest, layers []Layer) error {
	if err := key.Validate(); err != nil {
		return fmt.Errorf("cache key %s: %w", key, err)
	}
	rec := record{Layers: make([]digest.Digest, len(layers)), Created: time.Now().UTC()}
	for i, l := range layers {
		rec.Layers[i] = l.DiffID
	}
	return writeJSON(r.tmp, r.path(key), rec, atomicOnly)
}

// Touch marks key's record as used now, so GC keeps records in use and
// collects those unused the longest.
func (r *Records) Touch(ctx context.Context, key digest.Digest) {
	if key.Validate() != nil {
		return
	}
	now := time.Now()
	_ = os.Chtimes(r.path(key), now, now)
}

// Lock takes an exclusive lock on key, across goroutines and processes,
// so that a step shared by concurrent builds runs once: the second one
// waits, then finds the first one's record. Keys share 4096 lock files (by
// the first hex digits), so no lock file is ever created per key or
// removed while someone waits on it. Cancelling ctx abandons the wait.
func (r *Records) Lock(ctx context.Context, key digest.Digest) (unlock func(), err error) {
	if err := key.Validate(); err != nil {
		return nil, fmt.Errorf("cache key %s: %w", key, err)
	}
	return lockFile(ctx, filepath.Join(r.locks, key.Hex()[:3]), string(key))
}

// LookupImage returns the manifest recorded for an image key, if the
// image is still in the store: a fully cached rebuild thus gives back the
// same image, as BuildKit does.
func (r *Records) LookupImage(ctx context.Context, key digest.Digest) (digest.Digest, error) {
	if err := key.Validate(); err != nil {
		return "", fmt.Errorf("image key %s: %w", key, err)
	}
	var rec ImageRecord
	if err := readJSON(r.imagePath(key), &rec); err != nil {
		return "", err
	}
	if _, err := r.images.Get(ctx, rec.Digest); err != nil {
		return "", err
	}
	return rec.Digest, nil
}

// PutImage records that key made the image with manifest d.
func (r *Records) PutImage(ctx context.Context, key, d digest.Digest) error {
	if err := key.Validate(); err != nil {
		return fmt.Errorf("image key %s: %w", key, err)
	}
	return writeJSON(r.tmp, r.imagePath(key), ImageRecord{Digest: d, Created: time.Now().UTC()}, atomicOnly)
}
