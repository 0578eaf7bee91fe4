//go:build linux

package cache

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/internal/ctxio"
)

// BlobPath is where the blob with digest d lives (whether or not it exists).
func (s *Store) BlobPath(d digest.Digest) string {
	return filepath.Join(s.root, "blobs", "sha256", d.Hex())
}

// HasBlob reports whether the blob d is in the store, with its size.
func (s *Store) HasBlob(d digest.Digest) (int64, bool) {
	if d.Validate() != nil {
		return 0, false
	}
	fi, err := os.Stat(s.BlobPath(d))
	if err != nil {
		return 0, false
	}
	return fi.Size(), true
}

// OpenBlob opens blob d for reading.
func (s *Store) OpenBlob(ctx context.Context, d digest.Digest) (io.ReadCloser, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	f, err := os.Open(s.BlobPath(d))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("blob %s: %w", d, ErrNotFound)
		}
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	return f, nil
}

// ReadBlob reads a small blob (a manifest or config) whole, verifying it.
func (s *Store) ReadBlob(ctx context.Context, d digest.Digest) ([]byte, error) {
	rc, err := s.OpenBlob(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	if got := digest.FromBytes(b); got != d {
		return nil, fmt.Errorf("blob %s is corrupt (content hashes to %s)", d, got)
	}
	return b, nil
}

// BlobWriter writes one blob: to a temp file, hashed on the way, then
// fsynced, verified and renamed into place by Commit.
type BlobWriter struct {
	s *Store
	f *atomicfile.File
	h hash.Hash
	n int64
}

// NewBlobWriter starts a blob.
func (s *Store) NewBlobWriter() (*BlobWriter, error) {
	f, err := atomicfile.Create(atomicfile.Options{TempDir: filepath.Join(s.root, "tmp"), Sync: true})
	if err != nil {
		return nil, fmt.Errorf("new blob: %w", err)
	}
	return &BlobWriter{s: s, f: f, h: sha256.New()}, nil
}

func (w *BlobWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

// Commit finishes the blob. If expected is not "", the content must hash
// to it. It returns the blob's digest and size.
func (w *BlobWriter) Commit(expected digest.Digest) (digest.Digest, int64, error) {
	defer w.Close()
	d := digest.FromHash(w.h)
	if expected != "" && expected != d {
		return "", 0, fmt.Errorf("blob digest mismatch: expected %s, got %s", expected, d)
	}
	if err := w.f.Commit(w.s.BlobPath(d)); err != nil {
		return "", 0, fmt.Errorf("blob %s: %w", d, err)
	}
	return d, w.n, nil
}

// Close abandons an uncommitted blob.
func (w *BlobWriter) Close() error { return w.f.Close() }

// PutBlob stores r's content as a blob and returns its digest and size.
func (s *Store) PutBlob(ctx context.Context, r io.Reader, expected digest.Digest) (digest.Digest, int64, error) {
	if expected != "" {
		if n, ok := s.HasBlob(expected); ok {
			return expected, n, nil
		}
	}
	w, err := s.NewBlobWriter()
	if err != nil {
		return "", 0, err
	}
	defer w.Close()
	if _, err := io.Copy(w, ctxio.NewReader(ctx, r)); err != nil {
		return "", 0, fmt.Errorf("writing blob: %w", err)
	}
	return w.Commit(expected)
}

// PutBlobBytes stores b as a blob, durably.
func (s *Store) PutBlobBytes(ctx context.Context, b []byte) (digest.Digest, error) {
	return s.putBlobBytes(b, true)
}

// putBlobBytes stores b as a blob, durably (fsynced) or only atomically:
// the config and manifest of an image built here are no more durable than
// its snapshots (see the package doc), and an fsync on a busy disk can
// cost more than the rest of a cached build.
func (s *Store) putBlobBytes(b []byte, durable bool) (digest.Digest, error) {
	d := digest.FromBytes(b)
	if _, ok := s.HasBlob(d); ok {
		return d, nil
	}
	if err := s.writeFileSync(s.BlobPath(d), b, durable); err != nil {
		return "", err
	}
	return d, nil
}
