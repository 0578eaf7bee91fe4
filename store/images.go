//go:build linux

package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/digest"
)

// Images are the stored images: a manifest and a config, both blobs, over
// layers of the store. An image has no directory of its own; a name
// (Names) or a container keeps it from GC.
type Images struct {
	blobs  *Blobs
	layers *Layers
	names  *Names
}

// Get is the stored image with manifest d, readable as a
// go-containerregistry v1.Image whose layers are the stored blobs as its
// manifest names them (never recompressed; a layer built here is its
// snapshot's tar). What leaves the machine is Distributable.
func (im *Images) Get(ctx context.Context, d digest.Digest) (v1.Image, error) {
	raw, m, cfg, err := im.read(ctx, d)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&storeImage{im: im, ctx: ctx, manifest: raw, m: m, config: cfg})
}

// read returns the raw and parsed manifest d and its raw config.
func (im *Images) read(ctx context.Context, d digest.Digest) ([]byte, *v1.Manifest, []byte, error) {
	raw, err := im.blobs.Read(ctx, d)
	if err != nil {
		return nil, nil, nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("manifest %s: %w", d, err)
	}
	cfg, err := im.blobs.Read(ctx, digest.Digest(m.Config.Digest.String()))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("config of %s: %w", d, err)
	}
	return raw, m, cfg, nil
}

// ID is the ID of the stored image with manifest d: its config digest, as
// docker prints it.
func (im *Images) ID(ctx context.Context, d digest.Digest) (digest.Digest, error) {
	b, err := im.blobs.Read(ctx, d)
	if err != nil {
		return "", err
	}
	m, err := v1.ParseManifest(bytes.NewReader(b))
	if err != nil {
		return "", fmt.Errorf("manifest %s: %w", d, err)
	}
	return digest.Digest(m.Config.Digest.String()), nil
}

// Layers returns the stored layers of the image with manifest d, bottom
// first, and its config.
func (im *Images) Layers(ctx context.Context, d digest.Digest) ([]Layer, *v1.ConfigFile, error) {
	img, err := im.Get(ctx, d)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, nil, fmt.Errorf("config of %s: %w", d, err)
	}
	out := make([]Layer, 0, len(cfg.RootFS.DiffIDs))
	for _, id := range cfg.RootFS.DiffIDs {
		l, err := im.layers.Get(ctx, digest.Digest(id.String()))
		if err != nil {
			return nil, nil, fmt.Errorf("image %s: %w", d, err)
		}
		out = append(out, l)
	}
	return out, cfg, nil
}

// Commit writes cfg (with RootFS set from layers) and an OCI manifest for
// layers to the store and returns the manifest digest.
func (im *Images) Commit(ctx context.Context, cfg *v1.ConfigFile, layers []Layer, extras ...ConfigExtras) (digest.Digest, error) {
	c := *cfg
	c.RootFS = v1.RootFS{Type: "layers", DiffIDs: make([]v1.Hash, len(layers))}
	for i, l := range layers {
		h, err := v1.NewHash(string(l.DiffID))
		if err != nil {
			return "", fmt.Errorf("layer %d: %w", i, err)
		}
		c.RootFS.DiffIDs[i] = h
	}
	cb, err := encodeConfig(&c, extras)
	if err != nil {
		return "", fmt.Errorf("encoding image config: %w", err)
	}
	// Durable only if every layer is: an image over snapshots built here
	// is as durable as they are (see Blobs.putBytes).
	sync := !slices.ContainsFunc(layers, Layer.FromSnapshot)
	cd, err := im.blobs.putBytes(ctx, cb, sync)
	if err != nil {
		return "", err
	}
	ch, _ := v1.NewHash(string(cd))
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(cb)), Digest: ch},
		Layers:        make([]v1.Descriptor, len(layers)),
	}
	for i, l := range layers {
		h, err := v1.NewHash(string(l.Digest))
		if err != nil {
			return "", fmt.Errorf("layer %d: %w", i, err)
		}
		m.Layers[i] = v1.Descriptor{MediaType: types.MediaType(l.MediaType), Size: l.Size, Digest: h}
	}
	mb, err := json.Marshal(&m)
	if err != nil {
		return "", fmt.Errorf("encoding manifest: %w", err)
	}
	return im.blobs.putBytes(ctx, mb, sync)
}

// Import stores img (its layers unpacked into snapshots) and returns its
// manifest digest. Layers already in the store are not read again.
func (im *Images) Import(ctx context.Context, img v1.Image) (digest.Digest, error) {
	return im.importImage(ctx, img, nil)
}

// importImage is Import; with src, a layer missing from the store is
// recorded lazily (Layers.Record), to be fetched from src when read.
func (im *Images) importImage(ctx context.Context, img v1.Image, src *LayerSource) (digest.Digest, error) {
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", fmt.Errorf("reading image config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return "", fmt.Errorf("reading image layers: %w", err)
	}
	if len(layers) != len(cfg.RootFS.DiffIDs) {
		return "", fmt.Errorf("image has %d layers but its config lists %d diff_ids", len(layers), len(cfg.RootFS.DiffIDs))
	}
	for i, l := range layers {
		diffID := digest.Digest(cfg.RootFS.DiffIDs[i].String())
		if im.layers.Present(ctx, diffID) {
			continue
		}
		d, err := l.Digest()
		if err != nil {
			return "", fmt.Errorf("layer %d: %w", i, err)
		}
		mt, err := l.MediaType()
		if err != nil {
			return "", fmt.Errorf("layer %s: %w", d, err)
		}
		if src != nil {
			size, err := l.Size()
			if err != nil {
				return "", fmt.Errorf("layer %s: %w", d, err)
			}
			sl := Layer{DiffID: diffID, Digest: digest.Digest(d.String()), Size: size, MediaType: string(mt)}
			if err := im.layers.Record(ctx, sl, *src); err != nil {
				return "", err
			}
			continue
		}
		rc, err := l.Compressed()
		if err != nil {
			return "", fmt.Errorf("fetching layer %s: %w", d, err)
		}
		_, err = im.layers.Import(ctx, rc, digest.Digest(d.String()), diffID, string(mt))
		rc.Close()
		if err != nil {
			return "", err
		}
	}
	cb, err := img.RawConfigFile()
	if err != nil {
		return "", fmt.Errorf("reading image config: %w", err)
	}
	if _, err := im.blobs.PutBytes(ctx, cb); err != nil {
		return "", err
	}
	mb, err := img.RawManifest()
	if err != nil {
		return "", fmt.Errorf("reading image manifest: %w", err)
	}
	return im.blobs.PutBytes(ctx, mb)
}

type storeImage struct {
	im       *Images
	ctx      context.Context
	manifest []byte
	m        *v1.Manifest
	config   []byte
}

func (i *storeImage) RawConfigFile() ([]byte, error) { return i.config, nil }
func (i *storeImage) RawManifest() ([]byte, error)   { return i.manifest, nil }
func (i *storeImage) MediaType() (types.MediaType, error) {
	if i.m.MediaType != "" {
		return i.m.MediaType, nil
	}
	return types.OCIManifestSchema1, nil
}

func (i *storeImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for n, d := range i.m.Layers {
		if d.Digest == h {
			return &storeLayer{im: i.im, ctx: i.ctx, desc: d, diffID: i.diffID(n)}, nil
		}
	}
	return nil, fmt.Errorf("layer %s is not in the image: %w", h, ErrNotFound)
}

// diffID is the diffID of the image's layer n, "" if the config has none.
func (i *storeImage) diffID(n int) digest.Digest {
	var cfg struct {
		RootFS struct {
			DiffIDs []digest.Digest `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if json.Unmarshal(i.config, &cfg) != nil || n >= len(cfg.RootFS.DiffIDs) {
		return ""
	}
	return cfg.RootFS.DiffIDs[n]
}

type storeLayer struct {
	im     *Images
	ctx    context.Context
	desc   v1.Descriptor
	diffID digest.Digest // to fetch the layer first if it is lazy
}

func (l *storeLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *storeLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *storeLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }

// Compressed is the blob as the manifest names it (a lazy layer's is
// fetched first): for an uncompressed
// layer, whose blob is not on disk (built here, or exported with
// compression=uncompressed), its tar, made from its snapshot or blob.
func (l *storeLayer) Compressed() (io.ReadCloser, error) {
	d := digest.Digest(l.desc.Digest.String())
	rc, err := l.im.layers.OpenBlob(l.ctx, l.diffID, d)
	if err == nil || !IsNotFound(err) || !isUncompressed(l.desc.MediaType) {
		return rc, err
	}
	sl, lerr := l.im.layers.Get(l.ctx, d) // an uncompressed layer's digest is its diffID
	if lerr != nil {
		return nil, err
	}
	return l.im.layers.OpenTar(l.ctx, sl)
}
