//go:build linux

package remotecache

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/layer"
	"github.com/kiln-build/kiln/store"
)

// Report says what an export did.
type Report struct {
	Keys    int // entries the build offered (after mode=min's choice)
	Skipped int // of which the cache had already
	Written int // entries added (keys, slot hints and mounts)
	Took    time.Duration
}

func (r Report) String() string {
	return fmt.Sprintf("%d keys, %d already there, %d entries written in %s", r.Keys, r.Skipped, r.Written, r.Took.Round(time.Millisecond))
}

// Export adds the build's results (and, with CacheMounts, the cache
// mounts it used: id → directory) to the cache of spec. Keys the cache
// has are skipped without a request each: one listing tells which. The
// entries' blobs go up together, each once, and only those the cache
// lacks.
func (c *Cache) Export(ctx context.Context, spec Spec, results []Result, mounts map[string]string) (Report, error) {
	start := time.Now()
	var rep Report
	be, n, err := backendFor(spec)
	if err != nil {
		return rep, fmt.Errorf("--cache-to %s: %w", spec, err)
	}
	tags, err := be.Tags(ctx)
	if err != nil {
		return rep, err
	}
	have := map[string]bool{}
	for _, t := range tags {
		have[t] = true
	}
	imgs := map[string]v1.Image{}
	seen := map[digest.Digest]bool{}
	for _, r := range results {
		if (spec.Mode != "max" && !r.Final) || seen[r.Key] || len(r.Layers) == 0 {
			continue
		}
		seen[r.Key] = true
		rep.Keys++
		tag := n.key(r.Key)
		if have[tag] {
			rep.Skipped++
			continue
		}
		e := Entry{Key: r.Key, Slot: r.Slot, Step: r.Step}
		for _, l := range r.Layers {
			ref, err := c.blobOf(ctx, l)
			if err != nil {
				return rep, fmt.Errorf("exporting cache key %s: %w", r.Key, err)
			}
			e.Layers = append(e.Layers, Layer{DiffID: l.DiffID, Digest: ref.Digest, Size: ref.Size, MediaType: c.blobMediaType(l, ref)})
		}
		cfg, err := e.configBytes()
		if err != nil {
			return rep, err
		}
		img, err := c.entryImage(ctx, MediaTypeEntry, cfg, e.Layers)
		if err != nil {
			return rep, err
		}
		imgs[tag] = img
		if r.Slot != "" {
			imgs[n.slot(r.Slot)] = img // the same manifest: no blob more
		}
	}
	if spec.CacheMounts {
		for id, dir := range mounts {
			tag := n.mount(id, c.platform)
			img, err := c.mountImage(ctx, be, tag, id, dir, have[tag])
			if err != nil {
				return rep, err
			}
			if img != nil {
				imgs[tag] = img
			}
		}
	}
	c.wg.Wait() // blobs still going up in the background are not sent twice
	if err := be.Write(ctx, imgs); err != nil {
		return rep, err
	}
	rep.Written = len(imgs)
	rep.Took = time.Since(start)
	return rep, nil
}

// entryImage is a cache entry as an image over the store's blobs.
func (c *Cache) entryImage(ctx context.Context, configType string, cfg []byte, layers []Layer) (v1.Image, error) {
	ch, err := v1.NewHash(string(digest.FromBytes(cfg)))
	if err != nil {
		return nil, err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.MediaType(configType), Size: int64(len(cfg)), Digest: ch},
	}
	for _, l := range layers {
		h, err := v1.NewHash(string(l.Digest))
		if err != nil {
			return nil, err
		}
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.MediaType(l.MediaType), Size: l.Size, Digest: h})
	}
	raw, err := json.Marshal(&m)
	if err != nil {
		return nil, err
	}
	diffIDs := map[v1.Hash]digest.Digest{}
	for i, l := range layers {
		diffIDs[m.Layers[i].Digest] = l.DiffID
	}
	return partial.CompressedToImage(&entryImage{ctx: ctx, layers: c.st.Layers(), diffIDs: diffIDs, cfg: cfg, raw: raw, m: &m})
}

// entryImage is a go-containerregistry image whose layers are read from
// the store's blobs as they are uploaded.
type entryImage struct {
	ctx     context.Context
	layers  *store.Layers
	diffIDs map[v1.Hash]digest.Digest // to fetch a lazy layer's blob first
	cfg     []byte
	raw     []byte
	m       *v1.Manifest
}

func (i *entryImage) RawConfigFile() ([]byte, error)      { return i.cfg, nil }
func (i *entryImage) RawManifest() ([]byte, error)        { return i.raw, nil }
func (i *entryImage) MediaType() (types.MediaType, error) { return i.m.MediaType, nil }

func (i *entryImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == i.m.Config.Digest {
		return &blobLayer{desc: i.m.Config, open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(i.cfg)), nil }}, nil
	}
	for _, d := range i.m.Layers {
		if d.Digest == h {
			return &blobLayer{desc: d, open: func() (io.ReadCloser, error) {
				return i.layers.OpenBlob(i.ctx, i.diffIDs[h], digest.Digest(h.String()))
			}}, nil
		}
	}
	return nil, fmt.Errorf("blob %s is not in the cache entry", h)
}

type blobLayer struct {
	desc v1.Descriptor
	open func() (io.ReadCloser, error)
}

func (l *blobLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *blobLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *blobLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *blobLayer) Compressed() (io.ReadCloser, error)  { return l.open() }

// blobMediaType is the OCI media type of ref, l's compressed blob: the
// cache's codec's when it was made for the cache (see compressed), else
// the OCI name of l's own (docker's media types in an OCI manifest are
// refused by some registries).
func (c *Cache) blobMediaType(l store.Layer, ref store.BlobRef) string {
	if ref.Digest != l.Digest {
		if !l.FromSnapshot() {
			return store.MediaTypeLayerGzip // Gzip made it
		}
		switch c.codec.Kind {
		case layer.Zstd:
			return store.MediaTypeLayerZstd
		case layer.Gzip:
			return store.MediaTypeLayerGzip
		}
		return store.MediaTypeLayerTar
	}
	switch l.MediaType {
	case string(types.DockerLayer):
		return store.MediaTypeLayerGzip
	case "application/vnd.docker.image.rootfs.diff.tar.zstd":
		return store.MediaTypeLayerZstd
	}
	return l.MediaType
}
