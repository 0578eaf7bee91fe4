//go:build linux

package layer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// Compression settings are part of the layer digest: changing any of them
// changes every blob kiln writes, so they are fixed here.
const (
	gzipLevel     = pgzip.DefaultCompression
	gzipBlockSize = 1 << 20
	gzipBlocks    = 4
)

// Compress reads an uncompressed layer tar from r and writes its gzip form
// to w. The gzip header has no name and a zero time and the level and block
// size are fixed, so the same input always gives the same bytes. It returns
// the diffID ("sha256:<hex>" of the uncompressed bytes) and their count.
func Compress(ctx context.Context, w io.Writer, r io.Reader) (diffID string, size int64, err error) {
	zw, err := pgzip.NewWriterLevel(w, gzipLevel)
	if err != nil {
		return "", 0, fmt.Errorf("compressing layer: %w", err)
	}
	if err := zw.SetConcurrency(gzipBlockSize, gzipBlocks); err != nil {
		return "", 0, fmt.Errorf("compressing layer: %w", err)
	}
	// pgzip writes time.Time{} as a non-zero field; the epoch is zero.
	zw.ModTime = time.Unix(0, 0)
	h := sha256.New()
	size, err = io.Copy(io.MultiWriter(zw, h), &countingReader{ctx: ctx, r: r})
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", size, fmt.Errorf("compressing layer: %w", err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), size, nil
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Decompress returns the uncompressed stream of a layer blob, telling gzip,
// zstd and plain tar apart by their first bytes. Close releases the
// decompressor, not r.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(len(zstdMagic))
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("reading layer blob: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := pgzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("reading gzip layer: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("reading zstd layer: %w", err)
		}
		return zr.IOReadCloser(), nil
	default:
		return io.NopCloser(br), nil
	}
}
