//go:build linux

package remotecache

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/layer"
	"github.com/kiln-build/kiln/store"
)

// A cache mount (RUN --mount=type=cache) travels as an entry of one
// layer, the tar of its directory, tagged by a hash of its id and the
// platform. It is not keyed by content: the last build to export a mount
// id wins, as the mount itself is shared by every build that uses it.

// mountImage is the entry for the cache mount id at dir, or nil if the
// cache holds that same content already (exists: its tag is there).
func (c *Cache) mountImage(ctx context.Context, be backend, tag, id, dir string, exists bool) (v1.Image, error) {
	if exists {
		// Hashing the tree is much cheaper than compressing it: an
		// unchanged mount (a warm module cache) costs one read of it.
		if old, err := remoteMountDiffID(ctx, be, tag); err == nil {
			h := sha256.New()
			if err := layer.WriteTar(ctx, h, dir); err != nil {
				return nil, fmt.Errorf("exporting cache mount %s: %w", id, err)
			}
			if digest.FromHash(h) == old {
				return nil, nil
			}
		}
	}
	w, err := c.st.Blobs().Writer(ctx)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(layer.WriteTar(ctx, pw, dir)) }()
	diffID, _, err := layer.Compress(ctx, w, pr)
	pr.CloseWithError(err)
	if err != nil {
		return nil, fmt.Errorf("exporting cache mount %s: %w", id, err)
	}
	d, size, err := w.Commit(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("exporting cache mount %s: %w", id, err)
	}
	cfg, err := json.Marshal(mountConfig{ID: id, Platform: c.platform, DiffID: diffID})
	if err != nil {
		return nil, err
	}
	return c.entryImage(ctx, MediaTypeMount, cfg, []Layer{{DiffID: diffID, Digest: d, Size: size, MediaType: store.MediaTypeLayerGzip}})
}

// remoteMountDiffID is the diffID of the mount entry tagged tag.
func remoteMountDiffID(ctx context.Context, be backend, tag string) (digest.Digest, error) {
	m, _, ok, err := be.Manifest(ctx, tag)
	if err != nil || !ok {
		return "", fmt.Errorf("no mount entry %s: %v", tag, err)
	}
	src := &source{be: be}
	raw, err := src.small(ctx, digest.Digest(m.Config.Digest.String()))
	if err != nil {
		return "", err
	}
	var mc mountConfig
	if err := json.Unmarshal(raw, &mc); err != nil {
		return "", err
	}
	return mc.DiffID, nil
}

// ImportMount fills dir, the empty directory of the cache mount id, from
// the first source that has it; false if none has. The content is
// unpacked beside dir and moved in only once its blob has checked out.
func (im *Importer) ImportMount(ctx context.Context, id, dir string) (bool, error) {
	for _, s := range im.sources {
		e, ok, err := s.entry(ctx, im.c, s.n.mount(id, im.c.platform), MediaTypeMount)
		if err != nil || !ok {
			continue
		}
		if err := im.c.unpackMount(ctx, s, e.Layers[0], dir); err != nil {
			return false, fmt.Errorf("importing cache mount %s from %s: %w", id, s.be, err)
		}
		return true, nil
	}
	return false, nil
}

func (c *Cache) unpackMount(ctx context.Context, s *source, l Layer, dir string) error {
	if err := l.Digest.Validate(); err != nil {
		return err
	}
	rc, err := s.be.Blob(ctx, l.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	c.Fetched.Add(1)
	tmp, err := c.st.Temp().Dir("mount-")
	if err != nil {
		return err
	}
	defer c.st.Temp().Remove(tmp)
	h := sha256.New()
	ur, err := layer.Decompress(io.TeeReader(rc, h))
	if err != nil {
		return err
	}
	defer ur.Close()
	uh := sha256.New()
	if _, err := layer.ApplyWith(ctx, tmp, io.TeeReader(ur, uh), layer.ApplyOptions{Name: "cache mount"}); err != nil {
		return err
	}
	if _, err := io.Copy(uh, ur); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, io.TeeReader(rc, h)); err != nil {
		return err
	}
	if got := digest.FromHash(h); got != l.Digest {
		return fmt.Errorf("blob %s hashes to %s", l.Digest, got)
	}
	if got := digest.FromHash(uh); l.DiffID != "" && got != l.DiffID {
		return fmt.Errorf("cache mount content hashes to %s, its entry says %s", got, l.DiffID)
	}
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return err
	}
	for _, ent := range ents {
		if err := os.Rename(filepath.Join(tmp, ent.Name()), filepath.Join(dir, ent.Name())); err != nil {
			return err
		}
	}
	return nil
}
