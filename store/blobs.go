//go:build linux

package store

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

// Blobs are content-addressed files, named by the sha256 of their bytes
// (blobs/sha256/<hex>): manifests, configs and layer blobs. A blob is
// written to a temp file, hashed on the way, and renamed into place only
// if it hashes to what was expected, so a blob under a name is that
// name's content (unless the disk rots it: Read and Check verify).
type Blobs struct {
	dir string
	tmp string
}

// Path is where blob d lives (whether or not it exists).
func (b *Blobs) Path(d digest.Digest) string { return filepath.Join(b.dir, d.Hex()) }

// Stat returns the size of blob d; it wraps ErrNotFound if there is none.
func (b *Blobs) Stat(ctx context.Context, d digest.Digest) (int64, error) {
	if err := d.Validate(); err != nil {
		return 0, fmt.Errorf("blob %s: %w", d, err)
	}
	fi, err := os.Stat(b.Path(d))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("blob %s: %w", d, ErrNotFound)
		}
		return 0, fmt.Errorf("blob %s: %w", d, err)
	}
	return fi.Size(), nil
}

// has reports whether blob d is there.
func (b *Blobs) has(ctx context.Context, d digest.Digest) bool {
	_, err := b.Stat(ctx, d)
	return err == nil
}

// Open opens blob d for reading, as it is on disk (see Read).
func (b *Blobs) Open(ctx context.Context, d digest.Digest) (io.ReadCloser, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	f, err := os.Open(b.Path(d))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("blob %s: %w", d, ErrNotFound)
		}
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	return f, nil
}

// Read reads a small blob (a manifest or config) whole, verifying it.
func (b *Blobs) Read(ctx context.Context, d digest.Digest) ([]byte, error) {
	rc, err := b.Open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	if got := digest.FromBytes(data); got != d {
		return nil, fmt.Errorf("blob %s is corrupt (content hashes to %s)", d, got)
	}
	return data, nil
}

// Writer starts a blob, durable once committed.
func (b *Blobs) Writer(ctx context.Context) (*BlobWriter, error) {
	f, err := atomicfile.Create(atomicfile.Options{TempDir: b.tmp, Sync: true})
	if err != nil {
		return nil, fmt.Errorf("new blob: %w", err)
	}
	return &BlobWriter{b: b, f: f, h: sha256.New()}, nil
}

// Put stores r's content as a blob and returns its digest and size. If
// expected is not "", the content must hash to it (and a blob already
// there under it is not read again).
func (b *Blobs) Put(ctx context.Context, r io.Reader, expected digest.Digest) (digest.Digest, int64, error) {
	if expected != "" {
		if n, err := b.Stat(ctx, expected); err == nil {
			return expected, n, nil
		}
	}
	w, err := b.Writer(ctx)
	if err != nil {
		return "", 0, err
	}
	defer w.Close()
	if _, err := io.Copy(w, ctxio.NewReader(ctx, r)); err != nil {
		return "", 0, fmt.Errorf("writing blob: %w", err)
	}
	return w.Commit(ctx, expected)
}

// PutBytes stores data as a blob, durably.
func (b *Blobs) PutBytes(ctx context.Context, data []byte) (digest.Digest, error) {
	return b.putBytes(ctx, data, durable)
}

// putBytes stores data as a blob, durably (fsynced) or only atomically:
// the config and manifest of an image built here are no more durable than
// its snapshots (see the package doc), and an fsync on a busy disk can
// cost more than the rest of a cached build.
func (b *Blobs) putBytes(ctx context.Context, data []byte, sync bool) (digest.Digest, error) {
	d := digest.FromBytes(data)
	if b.has(ctx, d) {
		return d, nil
	}
	if err := writeFile(b.tmp, b.Path(d), data, sync); err != nil {
		return "", err
	}
	return d, nil
}

// BlobWriter writes one blob: to a temp file, hashed on the way, then
// fsynced, verified and renamed into place by Commit.
type BlobWriter struct {
	b *Blobs
	f *atomicfile.File
	h hash.Hash
	n int64
}

func (w *BlobWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

// Commit finishes the blob. If expected is not "", the content must hash
// to it. It returns the blob's digest and size.
func (w *BlobWriter) Commit(ctx context.Context, expected digest.Digest) (digest.Digest, int64, error) {
	defer w.Close()
	d := digest.FromHash(w.h)
	if expected != "" && expected != d {
		return "", 0, fmt.Errorf("blob digest mismatch: expected %s, got %s", expected, d)
	}
	if err := w.f.Commit(w.b.Path(d)); err != nil {
		return "", 0, fmt.Errorf("blob %s: %w", d, err)
	}
	return d, w.n, nil
}

// Close abandons an uncommitted blob.
func (w *BlobWriter) Close() error { return w.f.Close() }
