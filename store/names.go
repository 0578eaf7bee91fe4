//go:build linux

package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/imageref"
)

// Names are the image names (tags) of the store, each a record
// images/<sha256 hex of the canonical name>.json pointing at a manifest
// blob. GC keeps everything a name uses.
type Names struct {
	dir string
	tmp string

	blobs *Blobs
}

// ImageRecord is an image under a name: a name record, or (with no Name)
// an image key's record.
type ImageRecord struct {
	Name    string        `json:"name"`   // canonical, e.g. docker.io/library/busybox:latest
	Digest  digest.Digest `json:"digest"` // manifest
	Created time.Time     `json:"created"`
}

func (n *Names) path(canonical string) string {
	return filepath.Join(n.dir, digest.FromBytes([]byte(canonical)).Hex()+".json")
}

// Get returns the image that ref names in the store: a tag, a digest
// reference, or a (12 hex digits or longer prefix of a) manifest digest.
// It wraps ErrNotFound if there is none, or if its manifest is gone.
func (n *Names) Get(ctx context.Context, ref string) (ImageRecord, error) {
	if d := digest.Digest(ref).Hex(); len(d) >= 12 && isHex(d) {
		recs, _ := n.List(ctx)
		for _, r := range recs {
			if strings.HasPrefix(r.Digest.Hex(), d) {
				return r, nil
			}
		}
	}
	r, err := imageref.Parse(ref)
	if err != nil {
		return ImageRecord{}, err
	}
	if dg, ok := r.(name.Digest); ok {
		d := digest.Digest(dg.DigestStr())
		if n.blobs.has(ctx, d) {
			return ImageRecord{Name: imageref.Canonical(r), Digest: d}, nil
		}
		return ImageRecord{}, fmt.Errorf("image %s: %w", ref, ErrNotFound)
	}
	var rec ImageRecord
	if err := readJSON(n.path(imageref.Canonical(r)), &rec); err != nil {
		return ImageRecord{}, fmt.Errorf("image %s: %w", ref, ErrNotFound)
	}
	if !n.blobs.has(ctx, rec.Digest) {
		return ImageRecord{}, fmt.Errorf("image %s manifest %s: %w", ref, rec.Digest, ErrNotFound)
	}
	return rec, nil
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// List returns the names in the store, sorted.
func (n *Names) List(ctx context.Context) ([]ImageRecord, error) {
	ents, err := os.ReadDir(n.dir)
	if err != nil {
		return nil, fmt.Errorf("listing images: %w", err)
	}
	var out []ImageRecord
	for _, e := range ents {
		var r ImageRecord
		if err := readJSON(filepath.Join(n.dir, e.Name()), &r); err != nil {
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// TagDurable points the name ref at manifest d, fsynced before it is
// named: for an image that came from elsewhere (a pull, a load) and so is
// as durable as its blobs.
func (n *Names) TagDurable(ctx context.Context, ref string, d digest.Digest) error {
	return n.tag(ref, d, durable)
}

// TagAtomic is TagDurable without the fsync, for an image built here: the
// name is atomic (a killed process never tears it) but no more durable
// than the snapshots it names (see the package doc). A rebuild then does
// no fsync at all, which on a disk busy writing back other data (ext4
// commits the journal for an fsync) saves more than the rest of an
// incremental build takes.
func (n *Names) TagAtomic(ctx context.Context, ref string, d digest.Digest) error {
	return n.tag(ref, d, atomicOnly)
}

func (n *Names) tag(ref string, d digest.Digest, sync bool) error {
	r, err := imageref.Parse(ref)
	if err != nil {
		return err
	}
	if _, ok := r.(name.Digest); ok {
		return fmt.Errorf("cannot tag with a digest reference %q", ref)
	}
	c := imageref.Canonical(r)
	var old ImageRecord
	if readJSON(n.path(c), &old) == nil && old.Name == c && old.Digest == d {
		return nil // a rebuild that changed nothing rewrites (and fsyncs) nothing
	}
	return writeJSON(n.tmp, n.path(c), ImageRecord{Name: c, Digest: d, Created: time.Now().UTC()}, sync)
}

// Untag removes the name ref (not the image).
func (n *Names) Untag(ctx context.Context, ref string) error {
	r, err := imageref.Parse(ref)
	if err != nil {
		return err
	}
	if err := os.Remove(n.path(imageref.Canonical(r))); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("image %s: %w", ref, ErrNotFound)
		}
		return fmt.Errorf("untagging %s: %w", ref, err)
	}
	return nil
}
