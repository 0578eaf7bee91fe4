//go:build linux

package layer

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// bzip2Hello is `printf 'hello\n' | bzip2` (Go has no bzip2 writer).
var bzip2Hello = []byte{
	0x42, 0x5a, 0x68, 0x39, 0x31, 0x41, 0x59, 0x26, 0x53, 0x59, 0xc1, 0xc0,
	0x80, 0xe2, 0x00, 0x00, 0x01, 0x41, 0x00, 0x00, 0x10, 0x02, 0x44, 0xa0,
	0x00, 0x30, 0xcd, 0x00, 0xc3, 0x46, 0x29, 0x97, 0x17, 0x72, 0x45, 0x38,
	0x50, 0x90, 0xc1, 0xc0, 0x80, 0xe2,
}

func compressed(t *testing.T, c Compression, plain []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	var err error
	switch c {
	case Uncompressed:
		return plain
	case Bzip2:
		if string(plain) != "hello\n" {
			t.Fatal("bzip2 test data is only hello")
		}
		return bzip2Hello
	case Gzip:
		w = gzip.NewWriter(&buf)
	case Xz:
		w, err = xz.NewWriter(&buf)
	case Zstd:
		w, err = zstd.NewWriter(&buf)
	}
	must(t, err)
	_, err = w.Write(plain)
	must(t, err)
	must(t, w.Close())
	return buf.Bytes()
}

// A layer blob is gzip, zstd or plain (the OCI media types); an archive
// ADD extracts may also be bzip2 or xz. What a reader does not take comes
// back as it is.
func TestDecompress(t *testing.T) {
	plain := []byte("hello\n")
	for _, tc := range []struct {
		name           string
		c              Compression
		layer, archive bool // decompressed by Decompress, DecompressArchive
	}{
		{"plain", Uncompressed, true, true},
		{"gzip", Gzip, true, true},
		{"zstd", Zstd, true, true},
		{"bzip2", Bzip2, false, true},
		{"xz", Xz, false, true},
	} {
		data := compressed(t, tc.c, plain)
		if got := Detect(data); got != tc.c {
			t.Errorf("%s: Detect = %v", tc.name, got)
		}
		for _, r := range []struct {
			name   string
			open   func(io.Reader) (io.ReadCloser, error)
			decode bool
		}{{"Decompress", Decompress, tc.layer}, {"DecompressArchive", DecompressArchive, tc.archive}} {
			rc, err := r.open(bytes.NewReader(data))
			if err != nil {
				t.Errorf("%s %s: %v", r.name, tc.name, err)
				continue
			}
			got, err := io.ReadAll(rc)
			must(t, err)
			must(t, rc.Close())
			want := data
			if r.decode {
				want = plain
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s %s = %q, want %q", r.name, tc.name, got, want)
			}
		}
	}
	// A stream shorter than any magic is plain.
	rc, err := Decompress(bytes.NewReader([]byte{0x1f}))
	must(t, err)
	if b, _ := io.ReadAll(rc); !bytes.Equal(b, []byte{0x1f}) {
		t.Errorf("short stream: %q", b)
	}
	// A gzip magic with a bad header is an error, not plain data.
	if _, err := DecompressArchive(bytes.NewReader([]byte{0x1f, 0x8b, 0, 0, 0, 0, 0, 0})); err == nil {
		t.Error("a broken gzip header decompressed")
	}
}
