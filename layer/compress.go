//go:build linux

package layer

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/klauspost/compress/zstd"
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
	zstdLevel     = 3 // zstd's own default, as BuildKit's
)

// Codec is how an export compresses layers: a kind (Gzip, Zstd or
// Uncompressed) and a level, 0 for the kind's default. Equal codecs give
// equal bytes: each one's settings are pinned.
type Codec struct {
	Kind  Compression
	Level int
}

// String names the codec as a compression= value would, with the level
// when it is not the default: "gzip", "zstd-19", "uncompressed".
func (c Codec) String() string {
	s := c.Kind.String()
	if c.Level != 0 {
		s += "-" + strconv.Itoa(c.Level)
	}
	return s
}

// String is the compression's name: gzip, zstd, uncompressed, ...
func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	case Bzip2:
		return "bzip2"
	case Xz:
		return "xz"
	}
	return "uncompressed"
}

// Validate says whether c can compress layers at its level.
func (c Codec) Validate() error {
	switch c.Kind {
	case Gzip:
		if c.Level < 0 || c.Level > 9 {
			return fmt.Errorf("gzip compression-level %d: use 0 (default) to 9", c.Level)
		}
	case Zstd:
		if c.Level < 0 || c.Level > 22 {
			return fmt.Errorf("zstd compression-level %d: use 0 (default) to 22", c.Level)
		}
	case Uncompressed:
		if c.Level != 0 {
			return fmt.Errorf("compression-level %d: uncompressed layers have no level", c.Level)
		}
	default:
		return fmt.Errorf("layers cannot be compressed with %s: use gzip, zstd or uncompressed", c.Kind)
	}
	return nil
}

// Compress reads an uncompressed layer tar from r and writes its gzip form
// to w. The gzip header has no name and a zero time and the level and block
// size are fixed, so the same input always gives the same bytes. It returns
// the diffID (the digest of the uncompressed bytes) and their count.
func Compress(ctx context.Context, w io.Writer, r io.Reader) (diffID digest.Digest, size int64, err error) {
	return CompressWith(ctx, w, r, Codec{Kind: Gzip})
}

// CompressWith is Compress with codec c (see Codec). Uncompressed copies
// r to w. Nothing is buffered beyond the compressor's window.
func CompressWith(ctx context.Context, w io.Writer, r io.Reader, c Codec) (diffID digest.Digest, size int64, err error) {
	if err := c.Validate(); err != nil {
		return "", 0, err
	}
	var zw io.WriteCloser
	switch c.Kind {
	case Gzip:
		level := gzipLevel
		if c.Level != 0 {
			level = c.Level
		}
		gw, err := pgzip.NewWriterLevel(w, level)
		if err != nil {
			return "", 0, fmt.Errorf("compressing layer: %w", err)
		}
		if err := gw.SetConcurrency(gzipBlockSize, gzipBlocks); err != nil {
			return "", 0, fmt.Errorf("compressing layer: %w", err)
		}
		// pgzip writes time.Time{} as a non-zero field; the epoch is zero.
		gw.ModTime = time.Unix(0, 0)
		zw = gw
	case Zstd:
		level := zstdLevel
		if c.Level != 0 {
			level = c.Level
		}
		// A stream is compressed block after block whatever the
		// concurrency (it only overlaps writing), so the bytes depend on
		// the level alone.
		ew, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)), zstd.WithEncoderConcurrency(2))
		if err != nil {
			return "", 0, fmt.Errorf("compressing layer: %w", err)
		}
		zw = ew
	default:
		zw = nopCloser{w}
	}
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

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
