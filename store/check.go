//go:build linux

package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/digest"
)

// Problem is one broken thing Check found.
type Problem struct {
	Path   string // the store file or dir at fault
	What   string
	Remove bool // repairing means removing Path
}

// checker is one Check: what it found so far, which the entries below the
// first use (a layer with a corrupt blob is broken, and so is a record
// that names it).
type checker struct {
	s         *Store
	probs     []Problem
	badBlobs  map[digest.Digest]bool
	goodLayer map[digest.Digest]bool
}

// checks verify the entries that have something to verify. Check runs
// them in layout order, each seeing what the ones above it found.
var checks = map[*entry]func(c *checker, ctx context.Context) error{
	blobsDir:  (*checker).blobs,
	layersDir: (*checker).layers,
	keysDir:   (*checker).records,
	namesDir:  (*checker).names,
}

// Check verifies the store: every blob against its digest, every layer
// record against its blob and snapshot (a layer built here, which has no
// blob, against its diffID: its snapshot is the only copy), every cache
// record against its layers, every image name against its manifest,
// config and layers. With repair, broken entries are removed so the next
// build remakes them.
func (s *Store) Check(ctx context.Context, repair bool) ([]Problem, error) {
	c := &checker{s: s, badBlobs: map[digest.Digest]bool{}, goodLayer: map[digest.Digest]bool{}}
	for _, e := range layout {
		if check := checks[e]; check != nil {
			if err := check(c, ctx); err != nil {
				return nil, err
			}
		}
	}
	if repair {
		for _, pr := range c.probs {
			if pr.Remove {
				if err := os.RemoveAll(pr.Path); err != nil {
					return c.probs, fmt.Errorf("repairing %s: %w", pr.Path, err)
				}
			}
		}
	}
	return c.probs, nil
}

func (c *checker) add(path, format string, args ...any) {
	c.probs = append(c.probs, Problem{Path: path, What: fmt.Sprintf(format, args...), Remove: true})
}

func (c *checker) hasBlob(ctx context.Context, d digest.Digest) bool {
	return c.s.blobs.has(ctx, d) && !c.badBlobs[d]
}

func (c *checker) blobs(ctx context.Context) error {
	dir := c.s.blobs.dir
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("listing blobs: %w", err)
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := digest.NewFromHex(e.Name())
		p := filepath.Join(dir, e.Name())
		if d.Validate() != nil {
			c.add(p, "not a blob name")
			continue
		}
		got, err := fileDigest(p)
		if err != nil {
			c.add(p, "unreadable blob: %v", err)
			c.badBlobs[d] = true
		} else if got != d {
			c.add(p, "blob content hashes to %s", got)
			c.badBlobs[d] = true
		}
	}
	return nil
}

func (c *checker) layers(ctx context.Context) error {
	ls := c.s.layers
	files, _ := filepath.Glob(filepath.Join(ls.records, "*.json"))
	for _, p := range files {
		var rec layerRecord
		if err := readJSON(p, &rec); err != nil {
			c.add(p, "unreadable layer record")
			continue
		}
		l := rec.Layer
		blobThere := c.s.blobs.has(ctx, l.Digest)
		switch {
		case rec.Remote != nil && !dirExists(ls.SnapshotDir(l.DiffID)) && (!blobThere || c.hasBlob(ctx, l.Digest)):
			// Lazy: its content is fetched (and verified) when first read.
			c.goodLayer[l.DiffID] = true
		case !c.hasBlob(ctx, l.Digest) && !(l.FromSnapshot() && !blobThere):
			c.add(p, "layer %s: blob %s missing or corrupt", l.DiffID, l.Digest)
		case !dirExists(ls.SnapshotDir(l.DiffID)):
			c.add(p, "layer %s: snapshot missing", l.DiffID)
		case l.FromSnapshot() && !blobThere:
			// The snapshot is the only copy: it must still be what was hashed.
			if got, err := ls.snapshotDigest(ctx, l.DiffID); err != nil {
				c.add(p, "layer %s: unreadable snapshot: %v", l.DiffID, err)
			} else if got != l.DiffID {
				c.add(p, "layer %s: snapshot changed (its tar hashes to %s)", l.DiffID, got)
			} else {
				c.goodLayer[l.DiffID] = true
			}
		default:
			c.goodLayer[l.DiffID] = true
		}
	}
	return nil
}

func (c *checker) records(ctx context.Context) error {
	files, _ := filepath.Glob(filepath.Join(c.s.records.dir, "*.json"))
	for _, p := range files {
		if strings.HasSuffix(p, ".image.json") {
			var r ImageRecord
			if err := readJSON(p, &r); err != nil || !c.hasBlob(ctx, r.Digest) {
				c.add(p, "image cache record points to a missing manifest")
			}
			continue
		}
		var r record
		if err := readJSON(p, &r); err != nil {
			c.add(p, "unreadable cache record")
			continue
		}
		for _, id := range r.Layers {
			if !c.goodLayer[id] {
				c.add(p, "cache record needs layer %s, which is missing or broken", id)
				break
			}
		}
	}
	return nil
}

func (c *checker) names(ctx context.Context) error {
	files, _ := filepath.Glob(filepath.Join(c.s.names.dir, "*.json"))
	for _, p := range files {
		var r ImageRecord
		if err := readJSON(p, &r); err != nil {
			c.add(p, "unreadable image name record")
			continue
		}
		if msg := c.image(ctx, r.Digest); msg != "" {
			c.add(p, "image %s: %s", r.Name, msg)
		}
	}
	return nil
}

// image says what is wrong with the image with manifest d, or "".
func (c *checker) image(ctx context.Context, d digest.Digest) string {
	if !c.hasBlob(ctx, d) {
		return "manifest " + string(d) + " missing or corrupt"
	}
	raw, err := c.s.blobs.Read(ctx, d)
	if err != nil {
		return err.Error()
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return "unreadable manifest: " + err.Error()
	}
	cd := digest.Digest(m.Config.Digest.String())
	if !c.hasBlob(ctx, cd) {
		return "config " + string(cd) + " missing or corrupt"
	}
	cb, err := c.s.blobs.Read(ctx, cd)
	if err != nil {
		return err.Error()
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(cb, &cfg); err != nil {
		return "unreadable config: " + err.Error()
	}
	for _, id := range cfg.RootFS.DiffIDs {
		if !c.goodLayer[digest.Digest(id.String())] {
			return "layer " + id.String() + " missing or broken"
		}
	}
	return ""
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func fileDigest(p string) (digest.Digest, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	d, _, err := digest.FromReader(f)
	return d, err
}
