//go:build linux

package cache

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/internal/ctxio"
	"github.com/kiln-build/kiln/layer"
)

// OCI layer media types.
const (
	MediaTypeLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
	MediaTypeLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
	MediaTypeLayerTar  = "application/vnd.oci.image.layer.v1.tar"
)

// Layer is one layer in the store: its unpacked snapshot (by DiffID) and
// the blob that an image manifest names for it. A layer built here is kept
// uncompressed (see FromSnapshot): its blob is the snapshot's tar, made on
// demand, and its gzip form is made only when it leaves the machine.
type Layer struct {
	DiffID    digest.Digest `json:"diffID"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
	MediaType string        `json:"mediaType"`
}

// FromSnapshot reports whether l's blob is its snapshot written as a layer
// tar (layer.WriteTar), which is how CommitDir stores what a build makes:
// the uncompressed tar is never written to disk, as it hashes to the diffID
// and WriteTar gives the same bytes for the same tree every time.
func (l Layer) FromSnapshot() bool {
	return l.MediaType == MediaTypeLayerTar && l.Digest == l.DiffID
}

// layerRecord is layers/<diffID>.json: the layer, and the gzip blob made
// from it by an export or push, if one has been (see GzipLayer).
type layerRecord struct {
	Layer
	Gzip *BlobRef `json:"gzip,omitempty"`
}

// BlobRef names a blob in the store.
type BlobRef struct {
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
}

// SnapshotDir is the unpacked, overlay-format directory of the layer with
// the given diffID.
func (s *Store) SnapshotDir(diffID digest.Digest) string {
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

func (s *Store) layerPath(diffID digest.Digest) string {
	return filepath.Join(s.root, "layers", diffID.Hex()+".json")
}

// Layer returns the stored layer with diffID, if its record, blob and
// snapshot are all present.
func (s *Store) Layer(diffID digest.Digest) (Layer, error) {
	if err := diffID.Validate(); err != nil {
		return Layer{}, err
	}
	var l Layer
	if err := readJSON(s.layerPath(diffID), &l); err != nil {
		return Layer{}, fmt.Errorf("layer %s: %w", diffID, err)
	}
	if _, ok := s.HasBlob(l.Digest); !ok && !l.FromSnapshot() {
		return Layer{}, fmt.Errorf("layer %s blob %s: %w", diffID, l.Digest, ErrNotFound)
	}
	if _, err := os.Stat(s.SnapshotDir(diffID)); err != nil {
		return Layer{}, fmt.Errorf("layer %s snapshot: %w", diffID, ErrNotFound)
	}
	return l, nil
}

// CommitDir turns dir, an overlay upper dir or any overlay-format tree,
// into a layer by renaming it to its snapshot. dir must be inside the store
// (see TempDir) and is consumed. Nothing is compressed or copied: the tar
// is only hashed for the diffID, and made again (and gzipped) if the layer
// is ever exported or pushed.
func (s *Store) CommitDir(ctx context.Context, dir string) (Layer, error) {
	l, du, err := diffLayer(ctx, dir)
	if err != nil {
		return Layer{}, err
	}
	if err := renameDir(dir, s.SnapshotDir(l.DiffID)); err != nil {
		return Layer{}, err
	}
	s.sizes.Store(l.DiffID.Hex(), du) // GC need not measure it again
	if err := s.writeLayerRecord(layerRecord{Layer: l}); err != nil {
		return Layer{}, err
	}
	return l, nil
}

// diffLayer is the snapshot-backed layer of dir (its tar's digest and
// size), and the bytes dir takes on disk.
func diffLayer(ctx context.Context, dir string) (Layer, int64, error) {
	h := sha256.New()
	cw := ctxio.NewWriter(ctx, h)
	du, err := layer.WriteTarDU(ctx, cw, dir)
	if err != nil {
		return Layer{}, 0, fmt.Errorf("diffing %s: %w", dir, err)
	}
	d := digest.FromHash(h)
	return Layer{DiffID: d, Digest: d, Size: cw.N, MediaType: MediaTypeLayerTar}, du, nil
}

// writeLayerRecord writes layers/<diffID>.json: durably for a layer whose
// blob is durable (pulled, loaded), not for one built here, whose snapshot
// is not fsynced either (see the package doc).
func (s *Store) writeLayerRecord(r layerRecord) error {
	if r.FromSnapshot() {
		return s.writeRecord(s.layerPath(r.DiffID), r)
	}
	return s.writeJSON(s.layerPath(r.DiffID), r)
}

// ImportLayer stores a compressed layer blob read from r (a registry, an
// archive) and unpacks it into its snapshot. blob (its digest) and diffID, when
// known, are verified. The blob is written and unpacked in one pass over
// r; nothing is recorded unless both digests check out.
func (s *Store) ImportLayer(ctx context.Context, r io.Reader, blob, diffID digest.Digest, mediaType string) (Layer, error) {
	if diffID != "" {
		if l, err := s.Layer(diffID); err == nil {
			return l, nil
		}
	}
	var l Layer
	if size, ok := s.HasBlob(blob); ok {
		// Blob already here (a layer record went missing): unpack it.
		var err error
		if l, err = s.unpackBlob(ctx, blob, diffID); err != nil {
			return Layer{}, err
		}
		l.Size = size
	} else {
		var err error
		if l, err = s.fetchLayer(ctx, r, blob, diffID); err != nil {
			return Layer{}, err
		}
	}
	l.MediaType = ociLayerType(mediaType)
	if err := s.writeLayerRecord(layerRecord{Layer: l}); err != nil {
		return Layer{}, err
	}
	return l, nil
}

// fetchLayer writes the blob read from r and unpacks it at the same time.
func (s *Store) fetchLayer(ctx context.Context, r io.Reader, blob, diffID digest.Digest) (Layer, error) {
	w, err := s.NewBlobWriter()
	if err != nil {
		return Layer{}, err
	}
	defer w.Close()
	tee := io.TeeReader(ctxio.NewReader(ctx, r), w)
	got, err := s.unpack(ctx, tee, diffID)
	if err != nil {
		return Layer{}, fmt.Errorf("layer %s: %w", blob, err)
	}
	defer s.RemoveTemp(got.tmp)
	// The blob is every byte of r, including any after the compressed stream.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return Layer{}, fmt.Errorf("layer %s: %w", blob, err)
	}
	d, size, err := w.Commit(blob)
	if err != nil {
		return Layer{}, fmt.Errorf("layer %s: %w", blob, err)
	}
	if err := renameDir(got.tmp, s.SnapshotDir(got.diffID)); err != nil {
		return Layer{}, err
	}
	return Layer{DiffID: got.diffID, Digest: d, Size: size}, nil
}

// unpackBlob extracts blob d into the snapshot of its diffID.
func (s *Store) unpackBlob(ctx context.Context, d, diffID digest.Digest) (Layer, error) {
	rc, err := s.OpenBlob(ctx, d)
	if err != nil {
		return Layer{}, err
	}
	defer rc.Close()
	got, err := s.unpack(ctx, rc, diffID)
	if err != nil {
		return Layer{}, fmt.Errorf("layer %s: %w", d, err)
	}
	defer s.RemoveTemp(got.tmp)
	if err := renameDir(got.tmp, s.SnapshotDir(got.diffID)); err != nil {
		return Layer{}, err
	}
	return Layer{DiffID: got.diffID, Digest: d}, nil
}

type unpacked struct {
	tmp    string // the snapshot, still in a temp dir of the store
	diffID digest.Digest
}

// unpack decompresses the layer blob read from r into a new temp dir and
// checks its diffID (when not ""). The caller removes tmp (RemoveTemp)
// after renaming it into place or on error.
func (s *Store) unpack(ctx context.Context, r io.Reader, diffID digest.Digest) (unpacked, error) {
	ur, err := layer.Decompress(r)
	if err != nil {
		return unpacked{}, err
	}
	defer ur.Close()
	tmp, err := s.TempDir("unpack-")
	if err != nil {
		return unpacked{}, err
	}
	fail := func(err error) (unpacked, error) {
		s.RemoveTemp(tmp)
		return unpacked{}, err
	}
	h := sha256.New()
	// A pulled layer is as untrusted as an ADDed archive: the same bounds.
	cfg, err := s.LoadBuildConfig()
	if err != nil {
		return fail(err)
	}
	limit, err := s.ArchiveLimit(cfg)
	if err != nil {
		return fail(err)
	}
	name := "layer"
	if diffID != "" {
		name += " " + string(diffID)
	}
	opts := layer.ApplyOptions{Limits: layer.Limits{MaxBytes: limit}, Name: name}
	if _, err := layer.ApplyWith(ctx, tmp, io.TeeReader(ur, h), opts); err != nil {
		return fail(fmt.Errorf("unpacking: %w", err))
	}
	// Hash whatever trails the tar end marker too: the diffID covers all bytes.
	if _, err := io.Copy(h, ur); err != nil {
		return fail(fmt.Errorf("unpacking: %w", err))
	}
	got := digest.FromHash(h)
	if diffID != "" && got != diffID {
		return fail(fmt.Errorf("uncompressed content hashes to %s, config says %s", got, diffID))
	}
	return unpacked{tmp: tmp, diffID: got}, nil
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
	Layers  []digest.Digest `json:"layers"` // diffIDs
	Created time.Time       `json:"created"`
}

func (s *Store) keyPath(key digest.Digest) string {
	return filepath.Join(s.root, "keys", key.Hex()+".json")
}

// Lookup returns the layer chain recorded for key, if it and every layer
// it names are still in the store.
func (s *Store) Lookup(ctx context.Context, key digest.Digest) ([]Layer, error) {
	if err := key.Validate(); err != nil {
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
func (s *Store) Record(ctx context.Context, key digest.Digest, layers []Layer) error {
	if err := key.Validate(); err != nil {
		return err
	}
	r := record{Layers: make([]digest.Digest, len(layers)), Created: time.Now().UTC()}
	for i, l := range layers {
		r.Layers[i] = l.DiffID
	}
	return s.writeRecord(s.keyPath(key), r)
}

// IsNotFound reports whether err means something was not in the store.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// CommitCopy is CommitDir for a dir that must stay where it is (a
// container's upper dir): the snapshot is a copy, made by unpacking the
// dir's layer tar, and the diffID is that copy's.
func (s *Store) CommitCopy(ctx context.Context, dir string) (Layer, error) {
	tmp, err := s.TempDir("commit-")
	if err != nil {
		return Layer{}, err
	}
	defer s.RemoveTemp(tmp)
	snap := filepath.Join(tmp, "snapshot")
	if err := os.Mkdir(snap, 0o755); err != nil {
		return Layer{}, fmt.Errorf("committing %s: %w", dir, err)
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(layer.WriteTar(ctx, pw, dir))
	}()
	// A tree kiln made itself: no bound on depth or path length.
	_, err = layer.ApplyWith(ctx, snap, pr, layer.ApplyOptions{Limits: layer.Limits{MaxDepth: -1, MaxPathLen: -1}})
	pr.CloseWithError(err) // unblocks the writer if Apply stopped early
	if err != nil {
		return Layer{}, fmt.Errorf("copying %s: %w", dir, err)
	}
	return s.CommitDir(ctx, snap)
}
