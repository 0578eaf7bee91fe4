//go:build linux

package layer

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/digest"
)

// TestCompressWith: every codec round-trips, gives the same bytes twice
// (the settings are pinned), and the level changes the bytes.
func TestCompressWith(t *testing.T) {
	var in bytes.Buffer
	for i := range 20000 {
		in.WriteString(strings.Repeat("layer ", i%7))
	}
	blobs := map[string]string{}
	for _, c := range []Codec{{Kind: Gzip}, {Kind: Gzip, Level: 1}, {Kind: Zstd}, {Kind: Zstd, Level: 19}, {Kind: Uncompressed}} {
		var a, b bytes.Buffer
		id, n, err := CompressWith(t.Context(), &a, bytes.NewReader(in.Bytes()), c)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if id != digest.FromBytes(in.Bytes()) || n != int64(in.Len()) {
			t.Errorf("%s: diffID %s over %d bytes, want %s over %d", c, id, n, digest.FromBytes(in.Bytes()), in.Len())
		}
		if _, _, err := CompressWith(t.Context(), &b, bytes.NewReader(in.Bytes()), c); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("%s: two compressions of the same input differ", c)
		}
		rc, err := Decompress(bytes.NewReader(a.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(out, in.Bytes()) {
			t.Errorf("%s: does not decompress to its input (%v)", c, err)
		}
		if prev, ok := blobs[digest.FromBytes(a.Bytes()).String()]; ok {
			t.Errorf("%s gives the same bytes as %s", c, prev)
		}
		blobs[digest.FromBytes(a.Bytes()).String()] = c.String()
	}
	for _, c := range []Codec{{Kind: Gzip, Level: 10}, {Kind: Zstd, Level: 23}, {Kind: Uncompressed, Level: 1}, {Kind: Xz}} {
		if _, _, err := CompressWith(t.Context(), io.Discard, strings.NewReader("x"), c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

// TestClampTimes: times after the epoch become the epoch, earlier ones
// stay, cut to whole seconds; content and order are kept.
func TestClampTimes(t *testing.T) {
	epoch := time.Unix(1700000000, 0)
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	for _, h := range []*tar.Header{
		{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch.Add(time.Hour)},
		{Name: "d/old", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3, ModTime: epoch.Add(-time.Hour + 500*time.Millisecond), Format: tar.FormatPAX},
		{Name: "d/new", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3, ModTime: epoch.Add(time.Minute), Format: tar.FormatPAX, AccessTime: epoch.Add(time.Minute)},
	} {
		must(t, tw.WriteHeader(h))
		if h.Size > 0 {
			tw.Write([]byte("abc"))
		}
	}
	must(t, tw.Close())
	var out bytes.Buffer
	must(t, ClampTimes(t.Context(), &out, &in, epoch))
	tr := tar.NewReader(&out)
	want := []struct {
		name string
		at   time.Time
	}{{"d/", epoch}, {"d/old", epoch.Add(-time.Hour)}, {"d/new", epoch}}
	for _, w := range want {
		h, err := tr.Next()
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != w.name || !h.ModTime.Equal(w.at) || !h.AccessTime.IsZero() {
			t.Errorf("entry %s at %v (atime %v), want %s at %v", h.Name, h.ModTime, h.AccessTime, w.name, w.at)
		}
		if b, _ := io.ReadAll(tr); h.Size > 0 && string(b) != "abc" {
			t.Errorf("%s content %q", h.Name, b)
		}
	}
}

// TestWriteTarHeaders: the layer tar's headers are normalized: sorted
// entries, no user or group names, no access or change times, whole
// seconds, and a PAX record only where USTAR cannot say it (xattrs, long
// names).
func TestWriteTarHeaders(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("n", 120)
	for _, p := range []string{"b", "a/z", "a/y", long} {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, p), []byte(p), 0o644))
	}
	// Whole seconds: a sub-second time is kept, in a PAX record (see
	// ClampTimes for the tars of reproducible exports).
	at := time.Unix(1700000000, 0)
	must(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, at, at)
	}))
	var buf bytes.Buffer
	must(t, WriteTar(t.Context(), &buf, dir))
	tr := tar.NewReader(&buf)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		names = append(names, h.Name)
		if h.Uname != "" || h.Gname != "" || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() || h.ModTime.Nanosecond() != 0 {
			t.Errorf("%s: uname %q gname %q atime %v ctime %v mtime %v", h.Name, h.Uname, h.Gname, h.AccessTime, h.ChangeTime, h.ModTime)
		}
		if pax := len(h.PAXRecords) > 0; pax != (h.Name == long) {
			t.Errorf("%s: PAX records %v", h.Name, h.PAXRecords)
		}
	}
	if got := strings.Join(names, " "); got != "a/ a/y a/z b "+long {
		t.Errorf("entries %s, want them sorted", got)
	}
}
