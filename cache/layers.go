package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/kiln-build/kiln/cache/layer"
	"github.com/kiln-build/kiln/solver/dag"
)

// OCI layer media types.
const (
	MediaTypeLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
	MediaTypeLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
	MediaTypeLayerTar  = "application/vnd.oci.image.layer.v1.tar"
)

// Layer is one layer in the store: its unpacked snapshot (by DiffID) and
// its compressed blob.
type Layer struct {
	DiffID    dag.Digest `json:"diffID"`
	Digest    dag.Digest `json:"digest"`
	Size      int64      `json:"size"`
	MediaType string     `json:"mediaType"`
}

// SnapshotDir is the unpacked, overlay-format directory of the layer with
// the given diffID.
func (s *Store) SnapshotDir(diffID dag.Digest) string {
	return filepath.Join(s.root, "snapshots", diffID.Hex())
}

// SnapshotDirs returns the snapshot dirs of layers, bottom first.
func (s *Store) SnapshotDirs(layers []Layer) []string {
	out := make([]string, len(layers))
	for i, l := range layers {
		out[i] = s.SnapshotDir(l.DiffID)
	}
	return out
}

func (s *Store) layerPath(diffID dag.Digest) string {
	return filepath.Join(s.root, "layers", diffID.Hex()+".json")
}

// Layer returns the stored layer with diffID, if its record, blob and
// snapshot are all present.
func (s *Store) Layer(diffID dag.Digest) (Layer, error) {
	if err := validHex(diffID); err != nil {
		return Layer{}, err
	}
	var l Layer
	if err := readJSON(s.layerPath(diffID), &l); err != nil {
		return Layer{}, fmt.Errorf("layer %s: %w", diffID, err)
	}
	if _, ok := s.HasBlob(l.Digest); !ok {
		return Layer{}, fmt.Errorf("layer %s blob %s: %w", diffID, l.Digest, ErrNotFound)
	}
	if _, err := os.Stat(s.SnapshotDir(diffID)); err != nil {
		return Layer{}, fmt.Errorf("layer %s snapshot: %w", diffID, ErrNotFound)
	}
	return l, nil
}

// CommitDir turns dir, an overlay upper dir or any overlay-format tree,
// into a layer: a compressed blob and, by renaming dir, its snapshot.
// dir must be inside the store (see TempDir) and is consumed.
func (s *Store) CommitDir(ctx context.Context, dir string) (Layer, error) {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(layer.WriteTar(ctx, pw, dir))
	}()
	w, err := s.NewBlobWriter()
	if err != nil {
		pr.CloseWithError(err)
		return Layer{}, err
	}
	defer w.Close()
	diffID, _, err := layer.Compress(ctx, w, pr)
	pr.CloseWithError(err) // unblocks the writer if Compress stopped early
	if err != nil {
		return Layer{}, fmt.Errorf("diffing %s: %w", dir, err)
	}
	d, size, err := w.Commit("")
	if err != nil {
		return Layer{}, err
	}
	l := Layer{DiffID: dag.Digest(diffID), Digest: d, Size: size, MediaType: MediaTypeLayerGzip}
	if err := renameDir(dir, s.SnapshotDir(l.DiffID)); err != nil {
		return Layer{}, err
	}
	if err := s.writeJSON(s.layerPath(l.DiffID), l); err != nil {
		return Layer{}, err
	}
	return l, nil
}

// ImportLayer stores a compressed layer blob read from r (a registry, an
// archive) and unpacks it into its snapshot. digest and diffID, when
// known, are verified.
func (s *Store) ImportLayer(ctx context.Context, r io.Reader, digest, diffID dag.Digest, mediaType string) (Layer, error) {
	if diffID != "" {
		if l, err := s.Layer(diffID); err == nil {
			return l, nil
		}
	}
	d, size, err := s.PutBlob(ctx, r, digest)
	if err != nil {
		return Layer{}, fmt.Errorf("layer %s: %w", digest, err)
	}
	l, err := s.unpackBlob(ctx, d, diffID)
	if err != nil {
		return Layer{}, err
	}
	l.Size = size
	l.MediaType = ociLayerType(mediaType)
	if err := s.writeJSON(s.layerPath(l.DiffID), l); err != nil {
		return Layer{}, err
	}
	return l, nil
}

// unpackBlob extracts blob d into the snapshot of its diffID.
func (s *Store) unpackBlob(ctx context.Context, d, diffID dag.Digest) (Layer, error) {
	rc, err := s.OpenBlob(ctx, d)
	if err != nil {
		return Layer{}, err
	}
	defer rc.Close()
	ur, err := layer.Decompress(rc)
	if err != nil {
		return Layer{}, fmt.Errorf("layer %s: %w", d, err)
	}
	defer ur.Close()
	tmp, err := s.TempDir("unpack-")
	if err != nil {
		return Layer{}, err
	}
	defer s.RemoveTemp(tmp)
	h := sha256.New()
	if _, err := layer.Apply(ctx, tmp, io.TeeReader(ur, h)); err != nil {
		return Layer{}, fmt.Errorf("unpacking layer %s: %w", d, err)
	}
	// Hash whatever trails the tar end marker too: the diffID covers all bytes.
	if _, err := io.Copy(h, ur); err != nil {
		return Layer{}, fmt.Errorf("unpacking layer %s: %w", d, err)
	}
	got := dag.Digest("sha256:" + hex.EncodeToString(h.Sum(nil)))
	if diffID != "" && got != diffID {
		return Layer{}, fmt.Errorf("layer %s: uncompressed content hashes to %s, config says %s", d, got, diffID)
	}
	if err := renameDir(tmp, s.SnapshotDir(got)); err != nil {
		return Layer{}, err
	}
	return Layer{DiffID: got, Digest: d}, nil
}

func ociLayerType(mt string) string {
	switch mt {
	case "application/vnd.docker.image.rootfs.diff.tar.gzip", "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "":
		return MediaTypeLayerGzip
	case "application/vnd.docker.image.rootfs.diff.tar.zstd":
		return MediaTypeLayerZstd
	}
	return mt
}

// record is what a cache key resolves to: a chain of layers, bottom first.
type record struct {
	Layers  []dag.Digest `json:"layers"` // diffIDs
	Created time.Time    `json:"created"`
}

func (s *Store) keyPath(key dag.Digest) string {
	return filepath.Join(s.root, "keys", key.Hex()+".json")
}

// Lookup returns the layer chain recorded for key, if it and every layer
// it names are still in the store.
func (s *Store) Lookup(ctx context.Context, key dag.Digest) ([]Layer, error) {
	if err := validHex(key); err != nil {
		return nil, err
	}
	var r record
	if err := readJSON(s.keyPath(key), &r); err != nil {
		return nil, fmt.Errorf("cache key %s: %w", key, err)
	}
	out := make([]Layer, 0, len(r.Layers))
	for _, id := range r.Layers {
		l, err := s.Layer(id)
		if err != nil {
			return nil, fmt.Errorf("cache key %s: %w", key, err)
		}
		out = append(out, l)
	}
	return out, nil
}

// Record remembers that key produced layers.
func (s *Store) Record(ctx context.Context, key dag.Digest, layers []Layer) error {
	if err := validHex(key); err != nil {
		return err
	}
	r := record{Layers: make([]dag.Digest, len(layers)), Created: time.Now().UTC()}
	for i, l := range layers {
		r.Layers[i] = l.DiffID
	}
	return s.writeJSON(s.keyPath(key), r)
}

// IsNotFound reports whether err means something was not in the store.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// CommitCopy is CommitDir for a dir that must stay where it is (a
// container's upper dir): the layer's snapshot is unpacked from its blob.
func (s *Store) CommitCopy(ctx context.Context, dir string) (Layer, error) {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(layer.WriteTar(ctx, pw, dir))
	}()
	w, err := s.NewBlobWriter()
	if err != nil {
		pr.CloseWithError(err)
		return Layer{}, err
	}
	defer w.Close()
	diffID, _, err := layer.Compress(ctx, w, pr)
	pr.CloseWithError(err)
	if err != nil {
		return Layer{}, fmt.Errorf("diffing %s: %w", dir, err)
	}
	d, size, err := w.Commit("")
	if err != nil {
		return Layer{}, err
	}
	l := Layer{DiffID: dag.Digest(diffID), Digest: d, Size: size, MediaType: MediaTypeLayerGzip}
	if _, err := os.Stat(s.SnapshotDir(l.DiffID)); err != nil {
		if _, err := s.unpackBlob(ctx, d, l.DiffID); err != nil {
			return Layer{}, err
		}
	}
	if err := s.writeJSON(s.layerPath(l.DiffID), l); err != nil {
		return Layer{}, err
	}
	return l, nil
}
