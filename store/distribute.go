//go:build linux

package store

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/layer"
)

// Distributable is DistributableAs with gzip, the compression every
// client reads.
func (im *Images) Distributable(ctx context.Context, d digest.Digest) (v1.Image, error) {
	return im.DistributableAs(ctx, d, layer.Codec{Kind: layer.Gzip}, false)
}

// DistributableAs is the stored image with manifest d as it leaves the
// machine (an OCI or docker archive, a push): every uncompressed layer is
// replaced by its form compressed with c, made now from the layer's
// snapshot if no earlier export made it, and kept in the store for the
// next one (see Layers.Blob: a layer is compressed at most once per
// codec). Layers pulled compressed pass through byte for byte unless
// force is set: then they too get c's kind (a layer of that kind already
// is kept, whatever its level). The manifest is rewritten to match, its
// media types of the stored family (OCI or docker); the config, and so the
// image ID, stays.
func (im *Images) DistributableAs(ctx context.Context, d digest.Digest, c layer.Codec, force bool) (v1.Image, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	raw, m, cfg, err := im.read(ctx, d)
	if err != nil {
		return nil, err
	}
	var cf v1.ConfigFile
	if err := json.Unmarshal(cfg, &cf); err != nil {
		return nil, fmt.Errorf("config of %s: %w", d, err)
	}
	changed := false
	for i, desc := range m.Layers {
		if !desc.MediaType.IsDistributable() || kindOf(desc.MediaType) < 0 {
			continue // foreign layers are named, not shipped
		}
		if !isUncompressed(desc.MediaType) && !force {
			continue
		}
		if i >= len(cf.RootFS.DiffIDs) {
			return nil, fmt.Errorf("image %s: layer %d has no diff_id", d, i)
		}
		l, err := im.layers.Get(ctx, digest.Digest(cf.RootFS.DiffIDs[i].String()))
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", d, err)
		}
		ref, err := im.layers.Blob(ctx, l, c)
		if err != nil {
			return nil, err
		}
		if ref.Digest == digest.Digest(desc.Digest.String()) {
			continue
		}
		h, err := v1.NewHash(string(ref.Digest))
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.DiffID, err)
		}
		m.Layers[i] = v1.Descriptor{MediaType: typeOf(c.Kind, desc.MediaType), Size: ref.Size, Digest: h, Annotations: desc.Annotations, URLs: desc.URLs}
		changed = true
	}
	if changed {
		if raw, err = json.Marshal(m); err != nil {
			return nil, fmt.Errorf("encoding manifest: %w", err)
		}
	}
	return partial.CompressedToImage(&storeImage{im: im, ctx: ctx, manifest: raw, m: m, config: cfg})
}

// typeOf is the media type of a layer of compression kind, in the family
// (docker or OCI) of its stored type was. Docker's has no zstd.
func typeOf(kind layer.Compression, was types.MediaType) types.MediaType {
	docker := was == types.DockerLayer || was == types.DockerUncompressedLayer
	switch {
	case kind == layer.Gzip && docker:
		return types.DockerLayer
	case kind == layer.Gzip:
		return types.OCILayer
	case kind == layer.Zstd:
		return types.OCILayerZStd
	case docker:
		return types.DockerUncompressedLayer
	}
	return types.OCIUncompressedLayer
}

// RewriteTimestamp stores the image with manifest d with the times of the
// files in its layers built here clamped to epoch (see Layers.Clamp), as
// BuildKit's rewrite-timestamp: base layers (pulled or loaded) are kept,
// byte for byte. It returns the new image's manifest digest, or d when no
// layer changed. The config changes only in its diff_ids.
func (im *Images) RewriteTimestamp(ctx context.Context, d digest.Digest, epoch time.Time) (digest.Digest, error) {
	_, m, cfg, err := im.read(ctx, d)
	if err != nil {
		return "", err
	}
	var c v1.ConfigFile
	if err := json.Unmarshal(cfg, &c); err != nil {
		return "", fmt.Errorf("config of %s: %w", d, err)
	}
	if len(c.RootFS.DiffIDs) != len(m.Layers) {
		return "", fmt.Errorf("image %s has %d layers but its config lists %d diff_ids", d, len(m.Layers), len(c.RootFS.DiffIDs))
	}
	changed := false
	for i, id := range c.RootFS.DiffIDs {
		l, err := im.layers.Get(ctx, digest.Digest(id.String()))
		if err != nil {
			return "", fmt.Errorf("image %s: %w", d, err)
		}
		if !l.FromSnapshot() {
			continue
		}
		nl, err := im.layers.Clamp(ctx, l, epoch)
		if err != nil {
			return "", err
		}
		if nl.DiffID == l.DiffID {
			continue
		}
		h, err := v1.NewHash(string(nl.DiffID))
		if err != nil {
			return "", err
		}
		c.RootFS.DiffIDs[i] = h
		m.Layers[i] = v1.Descriptor{MediaType: m.Layers[i].MediaType, Size: nl.Size, Digest: h, Annotations: m.Layers[i].Annotations}
		changed = true
	}
	if !changed {
		return d, nil
	}
	// Only rootfs changes: every other field stays as written, even those
	// v1.ConfigFile does not know.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(cfg, &fields); err != nil {
		return "", fmt.Errorf("config of %s: %w", d, err)
	}
	if fields["rootfs"], err = json.Marshal(c.RootFS); err != nil {
		return "", err
	}
	cb, err := json.Marshal(fields)
	if err != nil {
		return "", fmt.Errorf("encoding image config: %w", err)
	}
	cd, err := im.blobs.putBytes(ctx, cb, false)
	if err != nil {
		return "", err
	}
	if m.Config.Digest, err = v1.NewHash(string(cd)); err != nil {
		return "", err
	}
	m.Config.Size = int64(len(cb))
	mb, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encoding manifest: %w", err)
	}
	return im.blobs.putBytes(ctx, mb, false)
}

// Clamp is l with every file time after epoch set to epoch: a new layer
// built from l's snapshot (l itself if nothing was newer), made once per
// epoch and remembered in l's record.
func (ls *Layers) Clamp(ctx context.Context, l Layer, epoch time.Time) (Layer, error) {
	key := strconv.FormatInt(epoch.Unix(), 10)
	var rec layerRecord
	if err := readJSON(ls.recordPath(l.DiffID), &rec); err != nil {
		return Layer{}, fmt.Errorf("layer %s: %w", l.DiffID, err)
	}
	if id, ok := rec.Clamped[key]; ok {
		if nl, err := ls.Get(ctx, id); err == nil {
			return nl, nil
		}
	}
	tmp, err := ls.temp.Dir("clamp-")
	if err != nil {
		return Layer{}, err
	}
	defer ls.temp.Remove(tmp)
	snap := filepath.Join(tmp, "snapshot")
	if err := os.Mkdir(snap, 0o755); err != nil {
		return Layer{}, fmt.Errorf("clamping the times of layer %s: %w", l.DiffID, err)
	}
	src, err := ls.OpenTar(ctx, l)
	if err != nil {
		return Layer{}, err
	}
	defer src.Close()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(layer.ClampTimes(ctx, pw, src, epoch)) }()
	_, err = layer.ApplyWith(ctx, snap, pr, layer.ApplyOptions{Limits: layer.Limits{MaxDepth: -1, MaxPathLen: -1}})
	pr.CloseWithError(err)
	if err != nil {
		return Layer{}, fmt.Errorf("clamping the times of layer %s: %w", l.DiffID, err)
	}
	nl, err := ls.MoveIn(ctx, snap)
	if err != nil {
		return Layer{}, err
	}
	if err := readJSON(ls.recordPath(l.DiffID), &rec); err != nil {
		return Layer{}, fmt.Errorf("layer %s: %w", l.DiffID, err)
	}
	if rec.Clamped == nil {
		rec.Clamped = map[string]digest.Digest{}
	}
	rec.Clamped[key] = nl.DiffID
	return nl, ls.writeRecord(rec)
}
