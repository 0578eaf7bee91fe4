//go:build linux

package exporter

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/imageref"
	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/internal/ctxio"
)

// Annotations an OCI layout's index.json carries for each image: the first
// is what `umoci --image DIR:TAG` and skopeo's oci:DIR:TAG look up, the
// second is what containerd and BuildKit write.
const (
	AnnotationRefName       = "org.opencontainers.image.ref.name"
	AnnotationContainerName = "io.containerd.image.name"
)

// sink receives the files of an OCI layout, paths relative to its root.
type sink interface {
	put(ctx context.Context, rel string, size int64, r io.Reader) error
}

// WriteOCIArchive writes img as a tar of an OCI image layout to w, naming
// it name ("hello:1"; "" for no name). Blobs are streamed as the image
// gives them, never recompressed.
func WriteOCIArchive(ctx context.Context, w io.Writer, img v1.Image, name string) error {
	return writeOCIArchive(ctx, w, img, name, layoutOptions{})
}

// layoutOptions are the annotations of an OCI layout's index.json: its
// own (index) and its entry for the image's manifest (descriptor).
type layoutOptions struct {
	index, descriptor map[string]string
}

func writeOCIArchive(ctx context.Context, w io.Writer, img v1.Image, name string, o layoutOptions) error {
	tw := tar.NewWriter(ctxio.NewWriter(ctx, w))
	s := &tarSink{tw: tw, dirs: map[string]bool{}}
	if err := writeLayout(ctx, s, img, name, o); err != nil {
		return fmt.Errorf("writing OCI archive: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing OCI archive: %w", err)
	}
	return nil
}

// writeOCILayout writes img as an OCI image layout in dir, which is created
// if needed. An index.json already there is replaced: the layout then holds
// only img (blobs already there are kept).
func writeOCILayout(ctx context.Context, dir string, img v1.Image, name string, o layoutOptions) error {
	if err := writeLayout(ctx, dirSink(dir), img, name, o); err != nil {
		return fmt.Errorf("writing OCI layout %s: %w", dir, err)
	}
	return nil
}

// indexDescriptor is the descriptor of img's manifest as index.json lists it.
func indexDescriptor(img v1.Image, ref string) (v1.Descriptor, error) {
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	dg, err := img.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	size, err := img.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	desc := v1.Descriptor{MediaType: mt, Digest: dg, Size: size, Annotations: map[string]string{}}
	if cfg, err := img.ConfigFile(); err == nil && cfg.OS != "" && cfg.Architecture != "" {
		desc.Platform = &v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant, OSVersion: cfg.OSVersion}
	}
	if ref == "" {
		desc.Annotations[AnnotationRefName] = "latest"
		return desc, nil
	}
	tag, err := name.NewTag(ref, name.WeakValidation)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("image name %q: %w", ref, err)
	}
	desc.Annotations[AnnotationRefName] = tag.TagStr()
	desc.Annotations[AnnotationContainerName] = imageref.Canonical(tag)
	return desc, nil
}

func writeLayout(ctx context.Context, s sink, img v1.Image, ref string, o layoutOptions) error {
	desc, err := indexDescriptor(img, ref)
	if err != nil {
		return err
	}
	maps.Copy(desc.Annotations, o.descriptor)
	layoutFile := []byte(`{"imageLayoutVersion":"1.0.0"}`)
	if err := putBytes(ctx, s, "oci-layout", layoutFile); err != nil {
		return err
	}

	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("listing layers: %w", err)
	}
	seen := map[v1.Hash]bool{}
	for i, l := range layers {
		if err := putLayer(ctx, s, l, seen); err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return fmt.Errorf("config digest: %w", err)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := putBytes(ctx, s, blobPath(cfgName), cfg); err != nil {
		return err
	}
	manifest, err := img.RawManifest()
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if err := putBytes(ctx, s, blobPath(desc.Digest), manifest); err != nil {
		return err
	}

	index, err := json.Marshal(v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests:     []v1.Descriptor{desc},
		Annotations:   o.index,
	})
	if err != nil {
		return err
	}
	return putBytes(ctx, s, "index.json", index)
}

func putLayer(ctx context.Context, s sink, l v1.Layer, seen map[v1.Hash]bool) error {
	dg, err := l.Digest()
	if err != nil {
		return err
	}
	if seen[dg] {
		return nil
	}
	seen[dg] = true
	if mt, err := l.MediaType(); err == nil && !mt.IsDistributable() {
		return nil // foreign layers are fetched from their URLs, never shipped
	}
	size, err := l.Size()
	if err != nil {
		return err
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	return putVerified(ctx, s, dg, size, rc)
}

func blobPath(h v1.Hash) string { return path.Join("blobs", h.Algorithm, h.Hex) }

func putBytes(ctx context.Context, s sink, rel string, b []byte) error {
	if err := s.put(ctx, rel, int64(len(b)), bytes.NewReader(b)); err != nil {
		return fmt.Errorf("writing %s: %w", rel, err)
	}
	return nil
}

// putVerified streams a blob to s and fails if it is not what its digest
// and size say: a layout with a bad blob is worse than none.
func putVerified(ctx context.Context, s sink, want v1.Hash, size int64, r io.Reader) error {
	if want.Algorithm != "sha256" {
		return fmt.Errorf("blob %s: unsupported digest algorithm", want)
	}
	h := sha256.New()
	vr := &verifyReader{r: io.TeeReader(r, h), size: size}
	rel := blobPath(want)
	if err := s.put(ctx, rel, size, vr); err != nil {
		return fmt.Errorf("writing blob %s: %w", want, err)
	}
	if vr.n != size {
		return fmt.Errorf("blob %s: got %d bytes, want %d", want, vr.n, size)
	}
	if got := digest.FromHash(h); got.Hex() != want.Hex {
		return fmt.Errorf("blob %s: content has digest %s", want, got)
	}
	return nil
}

// verifyReader counts bytes and fails on more than size, so a tar entry
// never gets a short or long body silently.
type verifyReader struct {
	r    io.Reader
	size int64
	n    int64
}

func (v *verifyReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.n += int64(n)
	if v.n > v.size {
		return n, fmt.Errorf("blob longer than its size %d", v.size)
	}
	if err == io.EOF && v.n < v.size {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

// tarSink writes layout files as tar entries with fixed metadata, so the
// same image always gives the same archive.
type tarSink struct {
	tw   *tar.Writer
	dirs map[string]bool
}

var epoch = time.Unix(0, 0)

func (t *tarSink) put(_ context.Context, rel string, size int64, r io.Reader) error {
	var dirs []string
	for d := path.Dir(rel); d != "."; d = path.Dir(d) {
		dirs = append([]string{d}, dirs...)
	}
	for _, d := range dirs {
		if t.dirs[d] {
			continue
		}
		t.dirs[d] = true
		if err := t.tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}); err != nil {
			return err
		}
	}
	if err := t.tw.WriteHeader(&tar.Header{Name: rel, Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: epoch}); err != nil {
		return err
	}
	_, err := io.Copy(t.tw, r)
	return err
}

// dirSink writes layout files under a directory, each through a temporary
// file renamed into place, so a crash never leaves a partial blob.
type dirSink string

func (d dirSink) put(ctx context.Context, rel string, _ int64, r io.Reader) error {
	dst := filepath.Join(string(d), filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(dst, atomicfile.Options{Sync: true, Perm: 0o644}, func(w io.Writer) error {
		_, err := io.Copy(ctxio.NewWriter(ctx, w), r)
		return err
	})
}
