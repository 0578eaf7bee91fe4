//go:build linux

package layer

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/pgzip"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/internal/ctxio"
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
// the diffID (the digest of the uncompressed bytes) and their count.
func Compress(ctx context.Context, w io.Writer, r io.Reader) (diffID digest.Digest, size int64, err error) {
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
	size, err = io.Copy(io.MultiWriter(zw, h), ctxio.NewReader(ctx, r))
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", size, fmt.Errorf("compressing layer: %w", err)
	}
	return digest.FromHash(h), size, nil
}
