//go:build linux

package layer

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"fmt"
	"io"
	"slices"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/ulikunitz/xz"
)

// Compression is how a layer blob or an archive is compressed.
type Compression int

// The compressions Detect tells apart.
const (
	Uncompressed Compression = iota
	Gzip
	Bzip2
	Xz
	Zstd
)

var magics = []struct {
	c     Compression
	magic []byte
}{
	{Gzip, []byte{0x1f, 0x8b}},
	{Bzip2, []byte("BZh")},
	{Xz, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}},
	{Zstd, []byte{0x28, 0xb5, 0x2f, 0xfd}},
}

// Detect tells a stream's compression by its first bytes (6 are enough).
func Detect(head []byte) Compression {
	for _, m := range magics {
		if bytes.HasPrefix(head, m.magic) {
			return m.c
		}
	}
	return Uncompressed
}

// Decompress returns the uncompressed stream of a layer blob: gzip, zstd
// or plain, the compressions of the OCI layer media types, told by its
// first bytes; anything else is returned as it is, for the tar reader to
// refuse. Close releases the decompressor, not r.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	return decompress(r, "layer", Gzip, Zstd)
}

// DecompressArchive is Decompress for an archive a build extracts (ADD):
// bzip2 and xz too, as docker and BuildKit take them.
func DecompressArchive(r io.Reader) (io.ReadCloser, error) {
	return decompress(r, "archive", Gzip, Bzip2, Xz, Zstd)
}

func decompress(r io.Reader, what string, accept ...Compression) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(6)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("reading %s blob: %w", what, err)
	}
	c := Detect(head)
	if !slices.Contains(accept, c) {
		c = Uncompressed
	}
	switch c {
	case Gzip:
		zr, err := pgzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("reading gzip %s: %w", what, err)
		}
		return zr, nil
	case Bzip2:
		return io.NopCloser(bzip2.NewReader(br)), nil
	case Xz:
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("reading xz %s: %w", what, err)
		}
		return io.NopCloser(xr), nil
	case Zstd:
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("reading zstd %s: %w", what, err)
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}
