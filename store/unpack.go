//go:build linux

package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/internal/ctxio"
	"github.com/kiln-build/kiln/layer"
)

// Import stores a compressed layer blob read from r (a registry, an
// archive) and unpacks it into its snapshot. blob (its digest) and diffID,
// when known, are verified. The blob is written and unpacked in one pass
// over r; nothing is recorded unless both digests check out.
func (ls *Layers) Import(ctx context.Context, r io.Reader, blob, diffID digest.Digest, mediaType string) (Layer, error) {
	if diffID != "" && ls.Present(ctx, diffID) {
		if l, err := ls.Get(ctx, diffID); err == nil {
			return l, nil
		}
	}
	var l Layer
	if size, err := ls.blobs.Stat(ctx, blob); err == nil {
		// Blob already here (a layer record went missing): unpack it.
		if l, err = ls.unpackBlob(ctx, blob, diffID); err != nil {
			return Layer{}, err
		}
		l.Size = size
	} else {
		if l, err = ls.fetch(ctx, r, blob, diffID); err != nil {
			return Layer{}, err
		}
	}
	l.MediaType = ociLayerType(mediaType)
	if err := ls.writeRecord(layerRecord{Layer: l}); err != nil {
		return Layer{}, err
	}
	return l, nil
}

// fetch writes the blob read from r and unpacks it at the same time.
func (ls *Layers) fetch(ctx context.Context, r io.Reader, blob, diffID digest.Digest) (Layer, error) {
	w, err := ls.blobs.Writer(ctx)
	if err != nil {
		return Layer{}, err
	}
	defer w.Close()
	tee := io.TeeReader(ctxio.NewReader(ctx, r), w)
	got, err := ls.unpack(ctx, tee, diffID)
	if err != nil {
		return Layer{}, fmt.Errorf("layer %s: %w", blob, err)
	}
	defer ls.temp.Remove(got.tmp)
	// The blob is every byte of r, including any after the compressed stream.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return Layer{}, fmt.Errorf("layer %s: %w", blob, err)
	}
	d, size, err := w.Commit(ctx, blob)
	if err != nil {
		return Layer{}, fmt.Errorf("layer %s: %w", blob, err)
	}
	if err := renameDir(got.tmp, ls.SnapshotDir(got.diffID)); err != nil {
		return Layer{}, err
	}
	return Layer{DiffID: got.diffID, Digest: d, Size: size}, nil
}

// unpackBlob extracts blob d into the snapshot of its diffID.
func (ls *Layers) unpackBlob(ctx context.Context, d, diffID digest.Digest) (Layer, error) {
	rc, err := ls.blobs.Open(ctx, d)
	if err != nil {
		return Layer{}, err
	}
	defer rc.Close()
	got, err := ls.unpack(ctx, rc, diffID)
	if err != nil {
		return Layer{}, fmt.Errorf("layer %s: %w", d, err)
	}
	defer ls.temp.Remove(got.tmp)
	if err := renameDir(got.tmp, ls.SnapshotDir(got.diffID)); err != nil {
		return Layer{}, err
	}
	return Layer{DiffID: got.diffID, Digest: d}, nil
}

type unpacked struct {
	tmp    string // the snapshot, still in a temp dir of the store
	diffID digest.Digest
}

// unpack decompresses the layer blob read from r into a new temp dir and
// checks its diffID (when not ""). The caller removes tmp (Temp.Remove)
// after renaming it into place or on error.
func (ls *Layers) unpack(ctx context.Context, r io.Reader, diffID digest.Digest) (unpacked, error) {
	ur, err := layer.Decompress(r)
	if err != nil {
		return unpacked{}, err
	}
	defer ur.Close()
	tmp, err := ls.temp.Dir("unpack-")
	if err != nil {
		return unpacked{}, err
	}
	fail := func(err error) (unpacked, error) {
		ls.temp.Remove(tmp)
		return unpacked{}, err
	}
	h := sha256.New()
	// A pulled layer is as untrusted as an ADDed archive: the same bounds.
	cfg, err := ls.config.Build()
	if err != nil {
		return fail(err)
	}
	limit, err := ls.config.ArchiveLimit(cfg)
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
