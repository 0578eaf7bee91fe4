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

// OpenTar opens the uncompressed tar of the stored layer l (fetched first
// if it is lazy: see Ensure): its blob,
// decompressed, or for a layer built here (Layer.FromSnapshot) without a
// blob, its snapshot written as a tar as it is read. Either way the reader
// fails at the end if the bytes do not hash to l.DiffID.
func (ls *Layers) OpenTar(ctx context.Context, l Layer) (io.ReadCloser, error) {
	if err := ls.Ensure(ctx, []Layer{l}); err != nil {
		return nil, err
	}
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
	return ls.Blob(ctx, l, layer.Codec{Kind: layer.Gzip})
}

// Blob returns l's blob compressed with c: l's own blob when it already
// has c's kind (whatever its level: a pulled layer passes through byte
// for byte), else the one an earlier call made with c, else a new one
// made now from the layer's tar, streamed, and kept for the next export
// and push. For c uncompressed the blob is the layer tar itself, which is
// not kept (it is made again from the blob or snapshot when read: see
// storeLayer.Compressed); only its size is recorded.
func (ls *Layers) Blob(ctx context.Context, l Layer, c layer.Codec) (BlobRef, error) {
	if err := c.Validate(); err != nil {
		return BlobRef{}, err
	}
	if kindOf(types.MediaType(l.MediaType)) == c.Kind {
		return BlobRef{Digest: l.Digest, Size: l.Size}, nil
	}
	var rec layerRecord
	if err := readJSON(ls.recordPath(l.DiffID), &rec); err != nil {
		return BlobRef{}, fmt.Errorf("layer %s: %w", l.DiffID, err)
	}
	key := c.String()
	if c.Kind == layer.Uncompressed {
		if ref, ok := rec.Blobs[key]; ok {
			return ref, nil
		}
	} else if ref, ok := rec.made(ctx, ls.blobs, key); ok {
		return ref, nil
	}
	ref, err := ls.compress(ctx, l, c)
	if err != nil {
		return BlobRef{}, err
	}
	// Read again: another export may have added a codec meanwhile.
	if err := readJSON(ls.recordPath(l.DiffID), &rec); err != nil {
		return BlobRef{}, fmt.Errorf("layer %s: %w", l.DiffID, err)
	}
	if rec.Blobs == nil {
		rec.Blobs = map[string]BlobRef{}
	}
	rec.Blobs[key] = ref
	if err := ls.writeRecord(rec); err != nil {
		return BlobRef{}, err
	}
	return ref, nil
}

// compress makes l's blob with c from its tar, verified against its diffID.
func (ls *Layers) compress(ctx context.Context, l Layer, c layer.Codec) (BlobRef, error) {
	src, err := ls.OpenTar(ctx, l)
	if err != nil {
		return BlobRef{}, err
	}
	defer src.Close()
	if c.Kind == layer.Uncompressed {
		n, err := io.Copy(io.Discard, src)
		if err != nil {
			return BlobRef{}, fmt.Errorf("measuring layer %s: %w", l.DiffID, err)
		}
		return BlobRef{Digest: l.DiffID, Size: n}, nil
	}
	w, err := ls.blobs.Writer(ctx)
	if err != nil {
		return BlobRef{}, err
	}
	defer w.Close()
	diffID, _, err := layer.CompressWith(ctx, w, src, c)
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
	return BlobRef{Digest: d, Size: n}, nil
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

// kindOf is the compression of a layer of media type mt; -1 for what is
// not a layer kiln reads.
func kindOf(mt types.MediaType) layer.Compression {
	switch mt {
	case types.OCIUncompressedLayer, types.DockerUncompressedLayer:
		return layer.Uncompressed
	case types.OCILayer, types.DockerLayer:
		return layer.Gzip
	case types.OCILayerZStd:
		return layer.Zstd
	}
	return -1
}

// isUncompressed says whether mt is a plain layer tar.
func isUncompressed(mt types.MediaType) bool {
	return mt == types.OCIUncompressedLayer || mt == types.DockerUncompressedLayer
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
