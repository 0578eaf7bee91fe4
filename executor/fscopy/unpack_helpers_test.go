//go:build linux

package fscopy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/layer"
)

// tarEnt describes one entry of an archive made by a test.
type tarEnt struct {
	name, link string
	typ        byte
	data       string
	mode       int64
	mtime      time.Time
}

// mkTar makes a PAX tar of ents (a zero mode is 0644, a zero mtime 2001).
func mkTar(t testing.TB, ents ...tarEnt) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, ModTime: e.mtime, Format: tar.FormatPAX}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.ModTime.IsZero() {
			h.ModTime = fixedTime.Truncate(time.Second) // no PAX record for it
		}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// errGenerated ends every stream the generators below make.
var errGenerated = errors.New("test generator stopped")

// zeroReader reads zeros.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// bombStream streams a tar whose entry name declares size bytes but
// carries at most real bytes of zeros: nothing in the test ever holds or
// writes the declared size, even if the code under test does not stop.
func bombStream(name string, size, real int64) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Size: size, Mode: 0o644})
		if err == nil {
			_, err = io.CopyN(tw, zeroReader{}, real)
		}
		pw.CloseWithError(errors.Join(err, errGenerated))
	}()
	return pr
}

// gzipBomb is bombStream's tar gzipped into a file: a few kB for a
// header declaring 20GiB and 16MiB of zeros.
func gzipBomb(t testing.TB, path, name string, size, real int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Size: size, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(tw, zeroReader{}, real); err != nil {
		t.Fatal(err)
	}
	// Not tw.Close: the entry is short of what it declares.
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

// deepStream streams a tar of levels nested directories "a/a/…/a/", each
// with a file "f", stopping early if the reader goes away.
func deepStream(levels int) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		var err error
		name := ""
		for i := 0; i < levels && err == nil; i++ {
			name += "a/"
			err = tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: fixedTime})
			if err == nil {
				err = tw.WriteHeader(&tar.Header{Name: name + "f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1, ModTime: fixedTime})
			}
			if err == nil {
				_, err = tw.Write([]byte{'x'})
			}
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr
}

// paxRecord formats one PAX record, its length included.
func paxRecord(k, v string) string {
	n := len(k) + len(v) + 3
	n += len(strconv.Itoa(n + len(strconv.Itoa(n))))
	return fmt.Sprintf("%d %s=%s\n", n, k, v)
}

// rechecksum recomputes the checksum of the 512-byte header block b.
func rechecksum(b []byte) {
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
}

// paxSparse is a tar with one PAX (GNU 1.0) sparse entry of realsize
// bytes whose only data is data at off; tar.Writer cannot write one.
func paxSparse(t testing.TB, name string, realsize, off int64, data string) []byte {
	t.Helper()
	records := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
		paxRecord("GNU.sparse.name", name) + paxRecord("GNU.sparse.realsize", strconv.FormatInt(realsize, 10))
	sparseMap := fmt.Sprintf("1\n%d\n%d\n", off, len(data))
	sparseMap += strings.Repeat("\x00", 512-len(sparseMap))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range [][2]string{{"PaxHeaders/" + name, records}, {"GNUSparseFile.0/" + name, sparseMap + data}} {
		h := &tar.Header{Name: e[0], Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(e[1])), ModTime: fixedTime.Truncate(time.Second), Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e[1])
	}
	tw.Close()
	// The records' own header becomes the extended header of the entry.
	b := buf.Bytes()
	b[156] = tar.TypeXHeader
	rechecksum(b)
	return b
}

// gnuSparse is a tar with one old GNU ('S') sparse entry of realsize
// bytes whose only data is data at off.
func gnuSparse(t testing.TB, name string, realsize, off int64, data string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), Format: tar.FormatGNU}); err != nil {
		t.Fatal(err)
	}
	io.WriteString(tw, data)
	tw.Close()
	b := buf.Bytes()
	base256 := func(field []byte, v int64) { // GNU's encoding of numbers too big for octal
		clear(field)
		field[0] = 0x80
		binary.BigEndian.PutUint64(field[len(field)-8:], uint64(v))
	}
	b[156] = tar.TypeGNUSparse
	base256(b[386:398], off)              // sparse[0].offset
	base256(b[398:410], int64(len(data))) // sparse[0].numbytes
	base256(b[483:495], realsize)         // realsize
	rechecksum(b)
	return b
}

// canary is an extraction root beside a directory that nothing may touch.
type canary struct {
	base, root, outside, src string
	before                   map[string]string
	baseNames                string
}

// newCanary makes base/{root,outside,src}; with size > 0 base is a tmpfs
// of that many bytes, so that even a bomb the code fails to stop can only
// fill that.
func newCanary(t testing.TB, size int64) *canary {
	t.Helper()
	base := t.TempDir()
	if size > 0 {
		if err := unix.Mount("tmpfs", base, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
			t.Fatalf("mounting a %d-byte tmpfs: %v", size, err)
		}
		t.Cleanup(func() { _ = unix.Unmount(base, unix.MNT_DETACH) })
	}
	return canaryAt(t, base)
}

// canaryAt makes the canary's directories in base, which must be empty.
func canaryAt(t testing.TB, base string) *canary {
	t.Helper()
	c := &canary{base: base, root: filepath.Join(base, "root"), outside: filepath.Join(base, "outside"), src: filepath.Join(base, "src")}
	for _, d := range []string{c.root, c.outside, c.outside + "/dir", c.src} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(c.outside+"/sentinel", []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sentinel", c.outside+"/sentinel-link"); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, p := range []string{c.outside + "/sentinel", c.outside + "/dir", c.outside} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	c.before = describe(t, c.outside)
	c.baseNames = names(t, base)
	return c
}

// check fails if anything outside the root and src changed.
func (c *canary) check(t testing.TB) {
	t.Helper()
	after := describe(t, c.outside)
	var diffs []string
	for k, v := range c.before {
		if after[k] != v {
			diffs = append(diffs, fmt.Sprintf("%s: %q -> %q", k, v, after[k]))
		}
	}
	for k, v := range after {
		if _, ok := c.before[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: new %q", k, v))
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		t.Fatalf("the directory beside the root changed:\n%s", strings.Join(diffs, "\n"))
	}
	if got := names(t, c.base); got != c.baseNames {
		t.Fatalf("entries appeared beside the root: %s, had %s", got, c.baseNames)
	}
}

// describe lists every path under dir, dir itself included, with its type,
// mode, owner, mtime and content or target.
func describe(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		d := fmt.Sprintf("%o %d:%d %d.%09d", st.Mode, st.Uid, st.Gid, st.Mtim.Sec, st.Mtim.Nsec)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			d += " -> " + target
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			d += " " + hex.EncodeToString(sum[:8])
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = d
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func names(t testing.TB, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n []string
	for _, e := range ents {
		n = append(n, e.Name())
	}
	return strings.Join(n, ",")
}

// extractBytes runs extract on b into root with lim in force.
func extractBytes(ctx context.Context, b []byte, root string, lim layer.Limits) error {
	return extract(ctx, bytes.NewReader(b), root, &copier{}, lim)
}

func wantErr(t testing.TB, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one saying %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not say %q", err, w)
		}
	}
}
