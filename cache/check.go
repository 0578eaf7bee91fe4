//go:build linux

package cache

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

// Check verifies the store: every blob against its digest, every layer
// record against its blob and snapshot (a layer built here, which has no
// blob, against its diffID: its snapshot is the only copy), every cache record against its
// layers, every image name against its manifest, config and layers. With
// repair, broken entries are removed so the next build remakes them.
func (s *Store) Check(ctx context.Context, repair bool) ([]Problem, error) {
	var probs []Problem
	add := func(path, format string, args ...any) {
		probs = append(probs, Problem{Path: path, What: fmt.Sprintf(format, args...), Remove: true})
	}
	badBlobs := map[digest.Digest]bool{}
	blobDir := filepath.Join(s.root, "blobs", "sha256")
	ents, err := os.ReadDir(blobDir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		d := digest.NewFromHex(e.Name())
		p := filepath.Join(blobDir, e.Name())
		if d.Validate() != nil {
			add(p, "not a blob name")
			continue
		}
		got, err := fileDigest(p)
		if err != nil {
			add(p, "unreadable blob: %v", err)
			badBlobs[d] = true
		} else if got != d {
			add(p, "blob content hashes to %s", got)
			badBlobs[d] = true
		}
	}
	hasBlob := func(d digest.Digest) bool {
		_, ok := s.HasBlob(d)
		return ok && !badBlobs[d]
	}
	goodLayer := map[digest.Digest]bool{}
	layerFiles, _ := filepath.Glob(filepath.Join(s.root, "layers", "*.json"))
	for _, p := range layerFiles {
		var l Layer
		if err := readJSON(p, &l); err != nil {
			add(p, "unreadable layer record")
			continue
		}
		_, blobThere := s.HasBlob(l.Digest)
		switch {
		case !hasBlob(l.Digest) && !(l.FromSnapshot() && !blobThere):
			add(p, "layer %s: blob %s missing or corrupt", l.DiffID, l.Digest)
		case !dirExists(s.SnapshotDir(l.DiffID)):
			add(p, "layer %s: snapshot missing", l.DiffID)
		case l.FromSnapshot() && !blobThere:
			// The snapshot is the only copy: it must still be what was hashed.
			if got, err := s.snapshotDigest(ctx, l.DiffID); err != nil {
				add(p, "layer %s: unreadable snapshot: %v", l.DiffID, err)
			} else if got != l.DiffID {
				add(p, "layer %s: snapshot changed (its tar hashes to %s)", l.DiffID, got)
			} else {
				goodLayer[l.DiffID] = true
			}
		default:
			goodLayer[l.DiffID] = true
		}
	}
	keyFiles, _ := filepath.Glob(filepath.Join(s.root, "keys", "*.json"))
	for _, p := range keyFiles {
		if strings.HasSuffix(p, ".image.json") {
			var r ImageRecord
			if err := readJSON(p, &r); err != nil || !hasBlob(r.Digest) {
				add(p, "image cache record points to a missing manifest")
			}
			continue
		}
		var r record
		if err := readJSON(p, &r); err != nil {
			add(p, "unreadable cache record")
			continue
		}
		for _, id := range r.Layers {
			if !goodLayer[id] {
				add(p, "cache record needs layer %s, which is missing or broken", id)
				break
			}
		}
	}
	imageFiles, _ := filepath.Glob(filepath.Join(s.root, "images", "*.json"))
	for _, p := range imageFiles {
		var r ImageRecord
		if err := readJSON(p, &r); err != nil {
			add(p, "unreadable image name record")
			continue
		}
		if msg := s.checkImage(ctx, r.Digest, hasBlob, goodLayer); msg != "" {
			add(p, "image %s: %s", r.Name, msg)
		}
	}
	if repair {
		for _, pr := range probs {
			if pr.Remove {
				if err := os.RemoveAll(pr.Path); err != nil {
					return probs, fmt.Errorf("repairing %s: %w", pr.Path, err)
				}
			}
		}
	}
	return probs, nil
}

func (s *Store) checkImage(ctx context.Context, d digest.Digest, hasBlob func(digest.Digest) bool, goodLayer map[digest.Digest]bool) string {
	if !hasBlob(d) {
		return "manifest " + string(d) + " missing or corrupt"
	}
	raw, err := s.ReadBlob(ctx, d)
	if err != nil {
		return err.Error()
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return "unreadable manifest: " + err.Error()
	}
	cd := digest.Digest(m.Config.Digest.String())
	if !hasBlob(cd) {
		return "config " + string(cd) + " missing or corrupt"
	}
	cb, err := s.ReadBlob(ctx, cd)
	if err != nil {
		return err.Error()
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(cb, &cfg); err != nil {
		return "unreadable config: " + err.Error()
	}
	for _, id := range cfg.RootFS.DiffIDs {
		if !goodLayer[digest.Digest(id.String())] {
			return "layer " + id.String() + " missing or broken"
		}
	}
	return ""
}

// snapshotDigest is the digest of the snapshot of diffID written as a tar.
func (s *Store) snapshotDigest(ctx context.Context, diffID digest.Digest) (digest.Digest, error) {
	l, _, err := diffLayer(ctx, s.SnapshotDir(diffID))
	return l.DiffID, err
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
