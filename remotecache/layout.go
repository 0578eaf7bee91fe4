//go:build linux

package remotecache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/digest"
)

// refName is the OCI annotation that names a manifest in a layout.
const refName = "org.opencontainers.image.ref.name"

// layoutBackend is an OCI image layout directory: blobs/sha256/<hex>,
// index.json listing one manifest per entry, named by its tag. Blobs are
// written to a temp file and renamed; index.json is rewritten under a
// lock (index.json.lock) by appending, then renamed into place, so
// concurrent exporters to one directory keep each other's entries.
type layoutBackend struct{ dir string }

func (b *layoutBackend) String() string { return b.dir }

func (b *layoutBackend) blobPath(d digest.Digest) string {
	return filepath.Join(b.dir, "blobs", "sha256", d.Hex())
}

func (b *layoutBackend) readIndex() (*v1.IndexManifest, error) {
	raw, err := os.ReadFile(filepath.Join(b.dir, "index.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cache %s: %w", b.dir, err)
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("cache %s index.json: %w", b.dir, err)
	}
	return idx, nil
}

func (b *layoutBackend) Tags(ctx context.Context) ([]string, error) {
	idx, err := b.readIndex()
	if err != nil {
		return nil, err
	}
	var tags []string
	for _, m := range idx.Manifests {
		if t := m.Annotations[refName]; t != "" {
			tags = append(tags, t)
		}
	}
	return tags, nil
}

func (b *layoutBackend) Manifest(ctx context.Context, tag string) (*v1.Manifest, digest.Digest, bool, error) {
	idx, err := b.readIndex()
	if err != nil {
		return nil, "", false, err
	}
	for i := len(idx.Manifests) - 1; i >= 0; i-- { // the last one added wins
		desc := idx.Manifests[i]
		if desc.Annotations[refName] != tag {
			continue
		}
		d := digest.Digest(desc.Digest.String())
		raw, err := readVerified(b.blobPath(d), d)
		if err != nil {
			return nil, "", false, fmt.Errorf("cache entry %s in %s: %w", tag, b.dir, err)
		}
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil {
			return nil, "", false, fmt.Errorf("cache entry %s in %s: %w", tag, b.dir, err)
		}
		return m, d, true, nil
	}
	return nil, "", false, nil
}

func readVerified(path string, d digest.Digest) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if got := digest.FromBytes(raw); got != d {
		return nil, fmt.Errorf("blob %s hashes to %s", d, got)
	}
	return raw, nil
}

func (b *layoutBackend) Blob(ctx context.Context, d digest.Digest) (io.ReadCloser, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	f, err := os.Open(b.blobPath(d))
	if err != nil {
		return nil, fmt.Errorf("cache blob %s in %s: %w", d, b.dir, err)
	}
	return f, nil
}

func (b *layoutBackend) Write(ctx context.Context, imgs map[string]v1.Image) error {
	if len(imgs) == 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Join(b.dir, "blobs", "sha256"), 0o755); err != nil {
		return fmt.Errorf("cache %s: %w", b.dir, err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return fmt.Errorf("cache %s: %w", b.dir, err)
	}
	var add []v1.Descriptor
	for tag, img := range imgs {
		desc, err := b.writeImage(ctx, img)
		if err != nil {
			return fmt.Errorf("exporting the cache to %s: %w", b.dir, err)
		}
		desc.Annotations = map[string]string{refName: tag}
		add = append(add, desc)
	}
	return b.appendIndex(add)
}

func (b *layoutBackend) PutBlob(ctx context.Context, l partial.CompressedLayer) error {
	h, err := l.Digest()
	if err != nil {
		return err
	}
	d := digest.Digest(h.String())
	if _, err := os.Stat(b.blobPath(d)); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Join(b.dir, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	return b.writeBlob(rc, d)
}

// writeImage writes img's blobs that are not there yet, and its manifest.
func (b *layoutBackend) writeImage(ctx context.Context, img v1.Image) (v1.Descriptor, error) {
	layers, err := img.Layers()
	if err != nil {
		return v1.Descriptor{}, err
	}
	for _, l := range layers {
		h, err := l.Digest()
		if err != nil {
			return v1.Descriptor{}, err
		}
		if _, err := os.Stat(b.blobPath(digest.Digest(h.String()))); err == nil {
			continue
		}
		rc, err := l.Compressed()
		if err != nil {
			return v1.Descriptor{}, err
		}
		err = b.writeBlob(rc, digest.Digest(h.String()))
		rc.Close()
		if err != nil {
			return v1.Descriptor{}, err
		}
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return v1.Descriptor{}, err
	}
	if err := b.writeBlob(bytes.NewReader(cfg), digest.FromBytes(cfg)); err != nil {
		return v1.Descriptor{}, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	d := digest.FromBytes(raw)
	if err := b.writeBlob(bytes.NewReader(raw), d); err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	h, _ := v1.NewHash(string(d))
	return v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: h}, nil
}

// writeBlob writes r to a temp file and renames it into place only if it
// hashes to d.
func (b *layoutBackend) writeBlob(r io.Reader, d digest.Digest) error {
	f, err := os.CreateTemp(filepath.Join(b.dir, "blobs", "sha256"), ".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), r); err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	if got := digest.FromHash(h); got != d {
		return fmt.Errorf("blob %s: content hashes to %s", d, got)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), b.blobPath(d))
}

// appendIndex adds descs to index.json under the directory's lock; a
// descriptor already there under the same name and digest is not added
// twice.
func (b *layoutBackend) appendIndex(descs []v1.Descriptor) error {
	lock, err := os.OpenFile(filepath.Join(b.dir, "index.json.lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("cache %s: %w", b.dir, err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("locking cache %s: %w", b.dir, err)
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)
	idx, err := b.readIndex()
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, m := range idx.Manifests {
		have[m.Annotations[refName]+"@"+m.Digest.String()] = true
	}
	for _, d := range descs {
		if !have[d.Annotations[refName]+"@"+d.Digest.String()] {
			idx.Manifests = append(idx.Manifests, d)
		}
	}
	raw, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(b.dir, ".index-")
	if err != nil {
		return fmt.Errorf("cache %s: %w", b.dir, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return fmt.Errorf("cache %s: %w", b.dir, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(b.dir, "index.json"))
}
