//go:build linux

package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sync/singleflight"

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
// tar (layer.WriteTar), which is how MoveIn stores what a build makes: the
// uncompressed tar is never written to disk, as it hashes to the diffID
// and WriteTar gives the same bytes for the same tree every time.
func (l Layer) FromSnapshot() bool {
	return l.MediaType == MediaTypeLayerTar && l.Digest == l.DiffID
}

// BlobRef names a blob in the store.
type BlobRef struct {
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
}

// layerRecord is layers/<diffID>.json: the layer, the compressed blobs
// made from it by exports and pushes, by codec ("gzip", "zstd",
// "zstd-19": see Layers.Blob), and the layers its times were clamped to,
// by epoch (see Layers.Clamp). Gzip is where records written before
// Blobs kept the default gzip blob; it is still read.
type layerRecord struct {
	Layer
	Gzip    *BlobRef                 `json:"gzip,omitempty"`
	Blobs   map[string]BlobRef       `json:"blobs,omitempty"`
	Clamped map[string]digest.Digest `json:"clamped,omitempty"`
	// Remote is where a lazy layer's content is fetched from (Record);
	// set only while the layer may lack its blob and snapshot.
	Remote *LayerSource `json:"remote,omitempty"`
}

// blobRefs are the blobs the record keeps: its layer's and every one an
// export made from it (GC keeps them while the record lives).
func (r *layerRecord) blobRefs() []digest.Digest {
	out := []digest.Digest{r.Digest}
	if r.Gzip != nil {
		out = append(out, r.Gzip.Digest)
	}
	for _, b := range r.Blobs {
		out = append(out, b.Digest)
	}
	return out
}

// made is the blob an earlier export made with codec key, if it is still
// in the store.
func (r *layerRecord) made(ctx context.Context, blobs *Blobs, key string) (BlobRef, bool) {
	ref, ok := r.Blobs[key]
	if !ok && key == "gzip" && r.Gzip != nil {
		ref, ok = *r.Gzip, true
	}
	if !ok {
		return BlobRef{}, false
	}
	if n, err := blobs.Stat(ctx, ref.Digest); err != nil || n != ref.Size {
		return BlobRef{}, false
	}
	return ref, true
}

// Layers are the store's layers: each one's snapshot, an overlay-format
// directory that never changes once in place (snapshots/<diffID hex>), and
// its record (layers/<diffID hex>.json). A snapshot is returned as a path,
// for the caller to mount; the store never mounts anything.
type Layers struct {
	snapshots string
	records   string
	tmp       string

	blobs  *Blobs
	temp   *Temp
	config *Config
	sizes  *snapshotSizes

	locks   string             // locks/layer-<diffID hex>: one fetch of a lazy layer at a time
	flights singleflight.Group // the same, within this process
}

// SnapshotDir is the snapshot of the layer with diffID.
func (ls *Layers) SnapshotDir(diffID digest.Digest) string {
	return filepath.Join(ls.snapshots, diffID.Hex())
}

// SnapshotDirs are the snapshots of layers, bottom first: an overlay's
// lower dirs.
func (ls *Layers) SnapshotDirs(layers []Layer) []string {
	out := make([]string, len(layers))
	for i, l := range layers {
		out[i] = ls.SnapshotDir(l.DiffID)
	}
	return out
}

func (ls *Layers) recordPath(diffID digest.Digest) string {
	return filepath.Join(ls.records, diffID.Hex()+".json")
}

// Get returns the layer with diffID, if its record, blob and snapshot are
// all present, or if it is lazy (recorded with a source: see Record, and
// Ensure before reading its content); it wraps ErrNotFound otherwise.
func (ls *Layers) Get(ctx context.Context, diffID digest.Digest) (Layer, error) {
	if err := diffID.Validate(); err != nil {
		return Layer{}, fmt.Errorf("layer %s: %w", diffID, err)
	}
	var r layerRecord
	if err := readJSON(ls.recordPath(diffID), &r); err != nil {
		return Layer{}, fmt.Errorf("layer %s: %w", diffID, err)
	}
	l := r.Layer
	if r.Remote != nil {
		return l, nil
	}
	if !l.FromSnapshot() && !ls.blobs.has(ctx, l.Digest) {
		return Layer{}, fmt.Errorf("layer %s blob %s: %w", diffID, l.Digest, ErrNotFound)
	}
	if _, err := os.Stat(ls.SnapshotDir(diffID)); err != nil {
		return Layer{}, fmt.Errorf("layer %s snapshot: %w", diffID, ErrNotFound)
	}
	return l, nil
}

// MoveIn turns dir, an overlay upper dir or any overlay-format tree, into
// a layer by renaming it to its snapshot: dir must be inside the store
// (see Temp.Dir) and is gone afterwards. Nothing is compressed or copied:
// the tar is only hashed for the diffID, and made again (and gzipped) if
// the layer is ever exported or pushed.
func (ls *Layers) MoveIn(ctx context.Context, dir string) (Layer, error) {
	l, du, err := diffLayer(ctx, dir)
	if err != nil {
		return Layer{}, err
	}
	if err := renameDir(dir, ls.SnapshotDir(l.DiffID)); err != nil {
		return Layer{}, err
	}
	ls.sizes.known.Store(l.DiffID.Hex(), du) // GC need not measure it again
	if err := ls.writeRecord(layerRecord{Layer: l}); err != nil {
		return Layer{}, err
	}
	return l, nil
}

// CopyIn is MoveIn for a dir that must stay where it is (a container's
// upper dir): the snapshot is a copy, made by unpacking the dir's layer
// tar, and the diffID is that copy's.
func (ls *Layers) CopyIn(ctx context.Context, dir string) (Layer, error) {
	tmp, err := ls.temp.Dir("commit-")
	if err != nil {
		return Layer{}, err
	}
	defer ls.temp.Remove(tmp)
	snap := filepath.Join(tmp, "snapshot")
	if err := os.Mkdir(snap, 0o755); err != nil {
		return Layer{}, fmt.Errorf("copying %s: %w", dir, err)
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
	return ls.MoveIn(ctx, snap)
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

// snapshotDigest is the digest of the snapshot of diffID written as a tar:
// its diffID, unless it changed.
func (ls *Layers) snapshotDigest(ctx context.Context, diffID digest.Digest) (digest.Digest, error) {
	l, _, err := diffLayer(ctx, ls.SnapshotDir(diffID))
	return l.DiffID, err
}

// writeRecord writes layers/<diffID>.json: durably for a layer whose blob
// is durable (pulled, loaded), not for one built here, whose snapshot is
// not fsynced either (see the package doc).
func (ls *Layers) writeRecord(r layerRecord) error {
	return writeJSON(ls.tmp, ls.recordPath(r.DiffID), r, !r.FromSnapshot())
}
