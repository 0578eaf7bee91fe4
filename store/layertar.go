//go:build linux

package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/layer"
)

// OpenTar opens the uncompressed tar of the stored layer l: its blob,
// decompressed, or for a layer built here (Layer.FromSnapshot) without a
// blob, its snapshot written as a tar as it is read. Either way the reader
// fails at the end if the bytes do not hash to l.DiffID.
func (ls *Layers) OpenTar(ctx context.Context, l Layer) (io.ReadCloser, error) {
	if rc, err := ls.blobs.Open(ctx, l.Digest); err == nil {
		ur, err := layer.Decompress(rc)
		if err != nil {
			rc.Close()
			return nil, fmt.Errorf("layer %s: %w", l.DiffID, err)
		}
		return &verifyingReader{r: ur, h: sha256.New(), want: l.DiffID, close: func() error {
			ur.Close()
			return rc.Close()
		}}, nil
	} else if !IsNotFound(err) || !l.FromSnapshot() {
		return nil, err
	}
	return ls.snapshotTar(ctx, l.DiffID), nil
}

// Gzip returns the gzip blob of l, which must be in the store: the blob
// itself for a compressed layer, else the one an earlier call made, else a
// new one compressed now from the layer's tar. The compression is
// deterministic (see layer.Compress), so the same layer always gets the
// same blob, whichever store makes it.
func (ls *Layers) Gzip(ctx context.Context, l Layer) (BlobRef, error) {
	if gzipOf(types.MediaType(l.MediaType)) == "" {
		return BlobRef{Digest: l.Digest, Size: l.Size}, nil
	}
	var rec layerRecord
	if err := readJSON(ls.recordPath(l.DiffID), &rec); err != nil {
		return BlobRef{}, fmt.Errorf("layer %s: %w", l.DiffID, err)
	}
	if rec.Gzip != nil {
		if n, err := ls.blobs.Stat(ctx, rec.Gzip.Digest); err == nil && n == rec.Gzip.Size {
			return *rec.Gzip, nil
		}
	}
	src, err := ls.OpenTar(ctx, l)
	if err != nil {
		return BlobRef{}, err
	}
	defer src.Close()
	w, err := ls.blobs.Writer(ctx)
	if err != nil {
		return BlobRef{}, err
	}
	defer w.Close()
	diffID, _, err := layer.Compress(ctx, w, src)
	if err != nil {
		return BlobRef{}, fmt.Errorf("compressing layer %s: %w", l.DiffID, err)
	}
	if diffID != l.DiffID {
		return BlobRef{}, fmt.Errorf("compressing layer %s: its tar hashes to %s", l.DiffID, diffID)
	}
	d, n, err := w.Commit(ctx, "")
	if err != nil {
		return BlobRef{}, err
	}
	ref := BlobRef{Digest: d, Size: n}
	rec.Gzip = &ref
	if err := ls.writeRecord(rec); err != nil {
		return BlobRef{}, err
	}
	return ref, nil
}

// gzipOf is the compressed media type an export gives a layer of type mt,
// or "" if mt is already compressed (or not a layer kiln compresses).
func gzipOf(mt types.MediaType) types.MediaType {
	switch mt {
	case types.OCIUncompressedLayer:
		return types.OCILayer
	case types.DockerUncompressedLayer:
		return types.DockerLayer
	}
	return ""
}

// snapshotTar streams the snapshot of diffID as a layer tar, verified.
func (ls *Layers) snapshotTar(ctx context.Context, diffID digest.Digest) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(layer.WriteTar(ctx, pw, ls.SnapshotDir(diffID)))
	}()
	return &verifyingReader{r: pr, h: sha256.New(), want: diffID, close: func() error {
		// Stops WriteTar if the reader gave up early.
		return pr.CloseWithError(errors.New("layer tar reader closed"))
	}}
}

// verifyingReader fails at EOF if what it read does not hash to want: a
// snapshot that changed since its layer was recorded must not leave the
// machine under the old digest.
type verifyingReader struct {
	r     io.Reader
	h     hash.Hash
	want  digest.Digest
	close func() error
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if err == io.EOF {
		if got := digest.FromHash(v.h); got != v.want {
			return n, fmt.Errorf("layer %s is damaged: its content hashes to %s", v.want, got)
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.close() }
