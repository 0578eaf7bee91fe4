//go:build linux

package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/layer"
)

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

// DistributableImage is the stored image with manifest d as it leaves the
// machine (an OCI or docker archive, a push): every uncompressed layer is
// replaced by its gzip form, made now from the layer's snapshot if no
// earlier export made it, and kept in the store for the next one. The
// manifest is rewritten to match; the config, and so the image ID, stays.
// An image whose layers are all compressed is the stored one, unchanged.
func (s *Store) DistributableImage(ctx context.Context, d digest.Digest) (v1.Image, error) {
	raw, err := s.ReadBlob(ctx, d)
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d, err)
	}
	cfg, err := s.ReadBlob(ctx, digest.Digest(m.Config.Digest.String()))
	if err != nil {
		return nil, fmt.Errorf("config of %s: %w", d, err)
	}
	changed := false
	for i, desc := range m.Layers {
		gz := gzipOf(desc.MediaType)
		if gz == "" {
			continue
		}
		// An uncompressed layer's digest is its diffID.
		l, err := s.Layer(digest.Digest(desc.Digest.String()))
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", d, err)
		}
		ref, err := s.GzipLayer(ctx, l)
		if err != nil {
			return nil, err
		}
		h, err := v1.NewHash(string(ref.Digest))
		if err != nil {
			return nil, err
		}
		m.Layers[i] = v1.Descriptor{MediaType: gz, Size: ref.Size, Digest: h, Annotations: desc.Annotations, URLs: desc.URLs}
		changed = true
	}
	if changed {
		if raw, err = json.Marshal(m); err != nil {
			return nil, fmt.Errorf("encoding manifest: %w", err)
		}
	}
	return partial.CompressedToImage(&storeImage{s: s, ctx: ctx, manifest: raw, m: m, config: cfg})
}

// GzipLayer returns the gzip blob of l, which must be in the store: the
// blob itself for a compressed layer, else the one an earlier call made,
// else a new one compressed now from the layer's tar. The compression is
// deterministic (see layer.Compress), so the same layer always gets the
// same blob, whichever store makes it.
func (s *Store) GzipLayer(ctx context.Context, l Layer) (BlobRef, error) {
	if gzipOf(types.MediaType(l.MediaType)) == "" {
		return BlobRef{Digest: l.Digest, Size: l.Size}, nil
	}
	var rec layerRecord
	if err := readJSON(s.layerPath(l.DiffID), &rec); err != nil {
		return BlobRef{}, fmt.Errorf("layer %s: %w", l.DiffID, err)
	}
	if rec.Gzip != nil {
		if n, ok := s.HasBlob(rec.Gzip.Digest); ok && n == rec.Gzip.Size {
			return *rec.Gzip, nil
		}
	}
	src, err := s.OpenLayerTar(ctx, l)
	if err != nil {
		return BlobRef{}, err
	}
	defer src.Close()
	w, err := s.NewBlobWriter()
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
	d, n, err := w.Commit("")
	if err != nil {
		return BlobRef{}, err
	}
	ref := BlobRef{Digest: d, Size: n}
	rec.Gzip = &ref
	if err := s.writeLayerRecord(rec); err != nil {
		return BlobRef{}, err
	}
	return ref, nil
}

// OpenLayerTar opens the uncompressed tar of the stored layer l: its blob,
// decompressed, or for a layer built here (Layer.FromSnapshot) without a
// blob, its snapshot written as a tar as it is read. Either way the reader
// fails at the end if the bytes do not hash to l.DiffID.
func (s *Store) OpenLayerTar(ctx context.Context, l Layer) (io.ReadCloser, error) {
	if rc, err := s.OpenBlob(ctx, l.Digest); err == nil {
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
	return s.snapshotTar(ctx, l.DiffID), nil
}

// snapshotTar streams the snapshot of diffID as a layer tar, verified.
func (s *Store) snapshotTar(ctx context.Context, diffID digest.Digest) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(layer.WriteTar(ctx, pw, s.SnapshotDir(diffID)))
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
