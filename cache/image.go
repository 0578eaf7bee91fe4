//go:build linux

package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/imageref"
)

// ImageRecord is one name in the store.
type ImageRecord struct {
	Name    string        `json:"name"`   // canonical, e.g. docker.io/library/busybox:latest
	Digest  digest.Digest `json:"digest"` // manifest
	Created time.Time     `json:"created"`
}

func (s *Store) imagePath(canonical string) string {
	return filepath.Join(s.root, "images", digest.FromBytes([]byte(canonical)).Hex()+".json")
}

// Tag points the name ref at manifest digest d.
func (s *Store) Tag(ctx context.Context, ref string, d digest.Digest) error {
	return s.tag(ref, d, true)
}

// TagBuilt is Tag for an image built here: the name is written atomically
// but not fsynced, as it is no more durable than the snapshots it names
// (see the package doc). A rebuild then does no fsync at all, which on a
// disk busy writing back other data (ext4 commits the journal for an
// fsync) saves more than the rest of an incremental build takes.
func (s *Store) TagBuilt(ctx context.Context, ref string, d digest.Digest) error {
	return s.tag(ref, d, false)
}

func (s *Store) tag(ref string, d digest.Digest, durable bool) error {
	r, err := imageref.Parse(ref)
	if err != nil {
		return err
	}
	if _, ok := r.(name.Digest); ok {
		return fmt.Errorf("cannot tag with a digest reference %q", ref)
	}
	c := imageref.Canonical(r)
	var old ImageRecord
	if readJSON(s.imagePath(c), &old) == nil && old.Name == c && old.Digest == d {
		return nil // a rebuild that changed nothing rewrites (and fsyncs) nothing
	}
	rec := ImageRecord{Name: c, Digest: d, Created: time.Now().UTC()}
	if !durable {
		return s.writeRecord(s.imagePath(c), rec)
	}
	return s.writeJSON(s.imagePath(c), rec)
}

// Untag removes a name.
func (s *Store) Untag(ctx context.Context, ref string) error {
	r, err := imageref.Parse(ref)
	if err != nil {
		return err
	}
	if err := os.Remove(s.imagePath(imageref.Canonical(r))); err != nil {
		if os.IsNotExist(err) {
			return fmt.Errorf("image %s: %w", ref, ErrNotFound)
		}
		return err
	}
	return nil
}

// Resolve returns the manifest digest that ref names in the store: a
// tag, a digest reference, or a (prefix of a) manifest digest.
func (s *Store) Resolve(ctx context.Context, ref string) (ImageRecord, error) {
	if d := digest.Digest(ref).Hex(); len(d) >= 12 && isHex(d) {
		recs, _ := s.Images(ctx)
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
		if _, ok := s.HasBlob(d); ok {
			return ImageRecord{Name: imageref.Canonical(r), Digest: d}, nil
		}
		return ImageRecord{}, fmt.Errorf("image %s: %w", ref, ErrNotFound)
	}
	var rec ImageRecord
	if err := readJSON(s.imagePath(imageref.Canonical(r)), &rec); err != nil {
		return ImageRecord{}, fmt.Errorf("image %s: %w", ref, ErrNotFound)
	}
	if _, ok := s.HasBlob(rec.Digest); !ok {
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

// Images lists the names in the store, sorted.
func (s *Store) Images(ctx context.Context) ([]ImageRecord, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "images"))
	if err != nil {
		return nil, fmt.Errorf("listing images: %w", err)
	}
	var out []ImageRecord
	for _, e := range ents {
		var r ImageRecord
		if err := readJSON(filepath.Join(s.root, "images", e.Name()), &r); err != nil {
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Image is a stored image, readable as a go-containerregistry v1.Image
// whose layers are the stored blobs as its manifest names them (never
// recompressed; a layer built here is its snapshot's tar). What leaves the
// machine is DistributableImage.
func (s *Store) Image(ctx context.Context, manifest digest.Digest) (v1.Image, error) {
	raw, err := s.ReadBlob(ctx, manifest)
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", manifest, err)
	}
	cfg, err := s.ReadBlob(ctx, digest.Digest(m.Config.Digest.String()))
	if err != nil {
		return nil, fmt.Errorf("config of %s: %w", manifest, err)
	}
	return partial.CompressedToImage(&storeImage{s: s, ctx: ctx, manifest: raw, m: m, config: cfg})
}

// ImageID is the ID of the stored image with manifest d: its config
// digest, as docker prints it.
func (s *Store) ImageID(ctx context.Context, d digest.Digest) (digest.Digest, error) {
	b, err := s.ReadBlob(ctx, d)
	if err != nil {
		return "", err
	}
	m, err := v1.ParseManifest(bytes.NewReader(b))
	if err != nil {
		return "", fmt.Errorf("manifest %s: %w", d, err)
	}
	return digest.Digest(m.Config.Digest.String()), nil
}

// ImageLayers returns the stored layers of the image with manifest d,
// bottom first, and its config.
func (s *Store) ImageLayers(ctx context.Context, d digest.Digest) ([]Layer, *v1.ConfigFile, error) {
	img, err := s.Image(ctx, d)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, nil, fmt.Errorf("config of %s: %w", d, err)
	}
	out := make([]Layer, 0, len(cfg.RootFS.DiffIDs))
	for _, id := range cfg.RootFS.DiffIDs {
		l, err := s.Layer(digest.Digest(id.String()))
		if err != nil {
			return nil, nil, fmt.Errorf("image %s: %w", d, err)
		}
		out = append(out, l)
	}
	return out, cfg, nil
}

type storeImage struct {
	s        *Store
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
	for _, d := range i.m.Layers {
		if d.Digest == h {
			return &storeLayer{s: i.s, ctx: i.ctx, desc: d}, nil
		}
	}
	return nil, fmt.Errorf("layer %s is not in the image: %w", h, ErrNotFound)
}

type storeLayer struct {
	s    *Store
	ctx  context.Context
	desc v1.Descriptor
}

func (l *storeLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *storeLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *storeLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }

// Compressed is the blob as the manifest names it: for an uncompressed
// layer built here, whose blob is not on disk, its snapshot's tar.
func (l *storeLayer) Compressed() (io.ReadCloser, error) {
	d := digest.Digest(l.desc.Digest.String())
	rc, err := l.s.OpenBlob(l.ctx, d)
	if err == nil || !IsNotFound(err) || gzipOf(l.desc.MediaType) == "" {
		return rc, err
	}
	sl, lerr := l.s.Layer(d)
	if lerr != nil || !sl.FromSnapshot() {
		return nil, err
	}
	return l.s.snapshotTar(l.ctx, d), nil
}

// CommitImage writes cfg (with RootFS set from layers) and an OCI
// manifest for layers to the store and returns the manifest digest.
func (s *Store) CommitImage(ctx context.Context, cfg *v1.ConfigFile, layers []Layer, extras ...ConfigExtras) (digest.Digest, error) {
	c := *cfg
	c.RootFS = v1.RootFS{Type: "layers", DiffIDs: make([]v1.Hash, len(layers))}
	for i, l := range layers {
		h, err := v1.NewHash(string(l.DiffID))
		if err != nil {
			return "", err
		}
		c.RootFS.DiffIDs[i] = h
	}
	cb, err := encodeConfig(&c, extras)
	if err != nil {
		return "", fmt.Errorf("encoding image config: %w", err)
	}
	// Durable only if every layer is: an image over snapshots built here
	// is as durable as they are (see putBlobBytes).
	durable := !slices.ContainsFunc(layers, Layer.FromSnapshot)
	cd, err := s.putBlobBytes(cb, durable)
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
			return "", err
		}
		m.Layers[i] = v1.Descriptor{MediaType: types.MediaType(l.MediaType), Size: l.Size, Digest: h}
	}
	mb, err := json.Marshal(&m)
	if err != nil {
		return "", fmt.Errorf("encoding manifest: %w", err)
	}
	return s.putBlobBytes(mb, durable)
}

// ImportImage stores img (its layers unpacked into snapshots) and returns
// its manifest digest. Layers already in the store are not read again.
func (s *Store) ImportImage(ctx context.Context, img v1.Image) (digest.Digest, error) {
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
		if _, err := s.Layer(diffID); err == nil {
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
		rc, err := l.Compressed()
		if err != nil {
			return "", fmt.Errorf("fetching layer %s: %w", d, err)
		}
		_, err = s.ImportLayer(ctx, rc, digest.Digest(d.String()), diffID, string(mt))
		rc.Close()
		if err != nil {
			return "", err
		}
	}
	cb, err := img.RawConfigFile()
	if err != nil {
		return "", err
	}
	if _, err := s.PutBlobBytes(ctx, cb); err != nil {
		return "", err
	}
	mb, err := img.RawManifest()
	if err != nil {
		return "", err
	}
	return s.PutBlobBytes(ctx, mb)
}

// LookupImage returns the manifest recorded for an image key: the digest
// of an image's config minus its timestamps, plus its layers. A fully
// cached rebuild thus gives back the same image, as BuildKit does.
func (s *Store) LookupImage(ctx context.Context, key digest.Digest) (digest.Digest, error) {
	if err := key.Validate(); err != nil {
		return "", err
	}
	var r ImageRecord
	if err := readJSON(filepath.Join(s.root, "keys", key.Hex()+".image.json"), &r); err != nil {
		return "", err
	}
	if _, err := s.Image(ctx, r.Digest); err != nil {
		return "", err
	}
	return r.Digest, nil
}

// RecordImage remembers that key made the image with manifest d.
func (s *Store) RecordImage(ctx context.Context, key, d digest.Digest) error {
	if err := key.Validate(); err != nil {
		return err
	}
	return s.writeRecord(filepath.Join(s.root, "keys", key.Hex()+".image.json"), ImageRecord{Digest: d, Created: time.Now().UTC()})
}

// ImageKey is the key LookupImage uses for cfg (timestamps ignored) over layers.
func ImageKey(cfg *v1.ConfigFile, layers []Layer, extras ...ConfigExtras) (digest.Digest, error) {
	c := *cfg
	c.Created = v1.Time{}
	c.History = append([]v1.History(nil), cfg.History...)
	for i := range c.History {
		c.History[i].Created = v1.Time{}
	}
	var x *ConfigExtras // omitted when empty: keys made before extras existed stay
	for _, e := range extras {
		if e != (ConfigExtras{}) {
			x = &e
		}
	}
	b, err := json.Marshal(struct {
		Config *v1.ConfigFile
		Layers []Layer
		Extras *ConfigExtras `json:",omitempty"`
	}{&c, layers, x})
	if err != nil {
		return "", err
	}
	return digest.FromBytes(b), nil
}

// ConfigExtras are image config fields that go-containerregistry's
// v1.ConfigFile has no place for.
type ConfigExtras struct {
	// HealthStartInterval is config.Healthcheck.StartInterval (HEALTHCHECK
	// --start-interval), in nanoseconds as Docker encodes durations.
	HealthStartInterval time.Duration
}

// encodeConfig is cfg's JSON with the extras (the last non-zero one) added.
func encodeConfig(cfg *v1.ConfigFile, extras []ConfigExtras) ([]byte, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	var x ConfigExtras
	for _, e := range extras {
		if e != (ConfigExtras{}) {
			x = e
		}
	}
	if x.HealthStartInterval == 0 || cfg.Config.Healthcheck == nil {
		return b, nil
	}
	// Into the encoded healthcheck, keeping every other byte as it was.
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, err
	}
	var conf map[string]json.RawMessage
	if err := json.Unmarshal(top["config"], &conf); err != nil {
		return nil, err
	}
	var hc map[string]json.RawMessage
	if err := json.Unmarshal(conf["Healthcheck"], &hc); err != nil {
		return nil, err
	}
	hc["StartInterval"] = json.RawMessage(strconv.FormatInt(int64(x.HealthStartInterval), 10))
	if conf["Healthcheck"], err = json.Marshal(hc); err != nil {
		return nil, err
	}
	if top["config"], err = json.Marshal(conf); err != nil {
		return nil, err
	}
	return json.Marshal(top)
}
