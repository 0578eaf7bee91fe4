package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// archiveOf makes a tar of hdrs, each regular file holding its name.
func archiveOf(t *testing.T, format tar.Format, hdrs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		h.Format = format
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(h.Name))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			io.WriteString(tw, h.Name)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ADD unpacks tars whose first entry has a PAX or a GNU long-name header
// (a name over 100 bytes), as BuildKit does; it used to copy them as files.
// An entry replaces a symlink of the same name instead of writing through
// it, as BuildKit (moby's archive.Unpack) does.
func TestArchiveADDUnpacksAndReplaces(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	long := strings.Repeat("long-directory-name/", 3) + strings.Repeat("f", 110) // no USTAR split: PAX or GNU headers
	pax := archiveOf(t, tar.FormatPAX, &tar.Header{Name: long, Typeflag: tar.TypeReg}, &tar.Header{Name: "short", Typeflag: tar.TypeReg})
	gnu := archiveOf(t, tar.FormatGNU, &tar.Header{Name: long, Typeflag: tar.TypeReg})
	if pax[156] != tar.TypeXHeader || gnu[156] != 'L' {
		t.Fatalf("the archives do not start with PAX and GNU long-name headers: %q %q", pax[156], gnu[156])
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(pax)
	zw.Close()
	replace := archiveOf(t, tar.FormatPAX,
		&tar.Header{Name: "t/", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "d", Typeflag: tar.TypeSymlink, Linkname: "t"},
		&tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o750},
		&tar.Header{Name: "d/f", Typeflag: tar.TypeReg},
		&tar.Header{Name: "s", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
		&tar.Header{Name: "s", Typeflag: tar.TypeReg})
	dir := e.context(map[string]string{"Dockerfile": `ARG BASE
FROM $BASE
ADD pax.tar /pax/
ADD gnu.tar /gnu/
ADD pax.tgz /paxgz/
ADD replace.tar /r/
`})
	for name, b := range map[string][]byte{"pax.tar": pax, "gnu.tar": gnu, "pax.tgz": gz.Bytes(), "replace.tar": replace} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.mustKiln("build", "-t", "archives", "--build-arg", "BASE="+e.base, dir)
	got := files(t, e.image("archives"))
	for _, root := range []string{"/pax/", "/gnu/", "/paxgz/"} {
		if f := got[root+long]; f.data != long {
			t.Errorf("%s%s = %q: the archive was not unpacked", root, long, f.data)
		}
		if _, ok := got[root+"pax.tar"]; ok {
			t.Errorf("%s holds the archive itself", root)
		}
	}
	if f := got["/pax/short"]; f.data != "short" {
		t.Errorf("/pax/short = %q", f.data)
	}
	if d := got["/r/d"]; d.hdr == nil || d.hdr.Typeflag != tar.TypeDir || d.hdr.Mode&0o7777 != 0o750 {
		t.Errorf("/r/d should be the archive's directory, not the symlink: %+v", d.hdr)
	}
	if f := got["/r/d/f"]; f.data != "d/f" {
		t.Errorf("/r/d/f = %q", f.data)
	}
	if _, ok := got["/r/t/f"]; ok {
		t.Error("d/f was written through the symlink d -> t")
	}
	if s := got["/r/s"]; s.hdr == nil || s.hdr.Typeflag != tar.TypeReg || s.data != "s" {
		t.Errorf("/r/s should be the archive's file, not the symlink: %+v", s.hdr)
	}
	if p := got["/etc/passwd"]; p.data == "s" {
		t.Error("the file entry s was written through its symlink to /etc/passwd")
	}
}

// An archive that declares more than build.maxArchiveSize fails on its
// header, with an error naming the ADD source, the entry and the limit,
// and nothing of it stays in the store.
func TestArchiveBombFailsOnTheLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := os.WriteFile(filepath.Join(e.root, "config.json"), []byte(`{"build": {"maxArchiveSize": "64MB"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := e.context(map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nADD bomb.tar.gz /\n"})
	// 256MiB of zeros: a 330kB gzip (were the limit not applied, the step
	// would write 256MiB, far below the disk's free space). The gzip is a
	// series of members, as gzip(1) reads and writes them: the tar header,
	// one MiB of zeros 256 times over (the entry's data), the end-of-archive
	// blocks. Compressing 256MiB here took seconds under the race detector.
	const size = 256 << 20
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Mode: 0o644, Size: size}); err != nil {
		t.Fatal(err)
	}
	member := func(b []byte) []byte {
		var out bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&out, gzip.BestSpeed)
		if _, err := zw.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	mib := member(make([]byte, 1<<20))
	bomb := member(hdr.Bytes()) // the header alone: tw is not closed
	for range size >> 20 {
		bomb = append(bomb, mib...)
	}
	bomb = append(bomb, member(make([]byte, 2*512))...) // tar's end: two zero blocks
	if err := os.WriteFile(filepath.Join(dir, "bomb.tar.gz"), bomb, 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.kiln("", "build", "--progress=plain", "--build-arg", "BASE="+e.base, dir)
	want := `ADD bomb.tar.gz /: archive bomb.tar.gz: entry "big" declares 256MiB, more than the 64MiB archive limit (build.maxArchiveSize in $KILN_ROOT/config.json)`
	if r.code == 0 || !strings.Contains(r.stderr, want) {
		t.Fatalf("the bomb did not fail with %q: exit %d\n%s", want, r.code, r.stderr)
	}
	if left := tmpLeft(t, e.root); len(left) != 0 {
		t.Errorf("the failed ADD left temp dirs in the store: %v", left)
	}
	var total int64
	filepath.WalkDir(e.root, func(p string, d fs.DirEntry, err error) error { //nolint:errcheck
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	if total > 32<<20 {
		t.Errorf("the store holds %d bytes after the failed ADD", total)
	}
}
