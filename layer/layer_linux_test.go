package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/xattr"
)

// buildTree makes a snapshot holding every kind of thing a layer can carry.
func buildTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	p := func(rel string) string { return filepath.Join(dir, rel) }
	big := make([]byte, 3<<20+17)
	_, _ = rand.Read(big)
	longName := strings.Repeat("long-directory-name/", 8) + "file with spaces and ünïcode"

	must(t, os.MkdirAll(p("a/b"), 0o755))
	must(t, os.WriteFile(p("a/f"), []byte("hello\n"), 0o644))
	must(t, os.WriteFile(p("a/empty"), nil, 0o600))
	must(t, os.WriteFile(p("a/setuid"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.Chmod(p("a/setuid"), 0o755|os.ModeSetuid))
	must(t, os.WriteFile(p("big"), big, 0o644))
	must(t, os.MkdirAll(filepath.Dir(p(longName)), 0o755))
	must(t, os.WriteFile(p(longName), []byte("long"), 0o644))
	must(t, os.Symlink("../big", p("a/rel-link")))
	must(t, os.Symlink("/etc/passwd", p("abs-link")))
	must(t, os.Symlink("dangling/nowhere", p("a/b/dangling")))
	must(t, os.WriteFile(p("h1"), []byte("linked"), 0o640))
	must(t, os.Link(p("h1"), p("a/h2")))
	must(t, os.Link(p("h1"), p("a/b/h3")))
	must(t, unix.Mkfifo(p("fifo"), 0o620))
	must(t, unix.Mknod(p("null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, unix.Mknod(p("loop"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 0))))
	must(t, unix.Mknod(p("gone"), unix.S_IFCHR, 0))
	must(t, unix.Mknod(p("a/b/gone-too"), unix.S_IFCHR, 0))
	must(t, os.Mkdir(p("opq"), 0o750))
	must(t, unix.Setxattr(p("opq"), opaqueXattr, []byte("y"), 0))
	must(t, os.WriteFile(p("opq/new"), []byte("new"), 0o644))
	must(t, os.Mkdir(p("tmp"), 0o777))
	must(t, os.Chmod(p("tmp"), 0o777|os.ModeSticky))
	must(t, unix.Setxattr(p("a/f"), "user.kiln", []byte("value"), 0))
	must(t, unix.Setxattr(p("a/f"), "trusted.kiln", []byte{0, 1, 2, 0xff}, 0))
	must(t, unix.Setxattr(p("a"), "trusted.overlay.origin", []byte("dropped"), 0))
	must(t, unix.Lsetxattr(p("abs-link"), "trusted.onlink", []byte("x"), 0))
	l, err := net.Listen("unix", p("sock"))
	must(t, err)
	t.Cleanup(func() { l.Close() })

	must(t, os.Lchown(p("a"), 1000, 1000))
	must(t, os.Lchown(p("a/f"), 1000, 1001))
	must(t, os.Lchown(p("abs-link"), 12, 34))
	must(t, os.Chmod(p("a/setuid"), 0o755|os.ModeSetuid)) // chown cleared it

	// Times last, deepest first, so creating children does not move them.
	var paths []string
	must(t, filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		paths = append(paths, path)
		return err
	}))
	slices.Reverse(paths)
	for i, path := range paths[:len(paths)-1] {
		ts := unix.Timespec{Sec: 1600000000 + int64(i)*1000, Nsec: int64(i) * 1234567}
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, path, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
	}
	return dir
}

func writeTar(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	must(t, WriteTar(t.Context(), &buf, dir))
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	requireRoot(t)
	src := buildTree(t)
	b := writeTar(t, src)

	dst := t.TempDir()
	n, err := Apply(t.Context(), dst, bytes.NewReader(b))
	must(t, err)
	if n != int64(len(b)) {
		t.Errorf("Apply read %d bytes, the tar has %d", n, len(b))
	}
	want := readTree(t, src)
	delete(want, "sock") // sockets are not kept
	want["a"] = func(n node) node { n.Xattrs = ""; return n }(want["a"])
	if d := diffTrees(want, readTree(t, dst)); d != "" {
		t.Errorf("tree after WriteTar+Apply differs (-want +got):\n%s", d)
	}
	// And the applied tree writes the same tar again.
	if b2 := writeTar(t, dst); !bytes.Equal(b, b2) {
		t.Errorf("WriteTar of the applied tree differs from the original tar")
	}
}

func TestWriteTarEntries(t *testing.T) {
	requireRoot(t)
	b := writeTar(t, buildTree(t))
	tr := tar.NewReader(bytes.NewReader(b))
	byName := map[string]*tar.Header{}
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		names = append(names, hdr.Name)
		byName[hdr.Name] = hdr
		if hdr.Uname != "" || hdr.Gname != "" || !hdr.AccessTime.IsZero() || !hdr.ChangeTime.IsZero() {
			t.Errorf("%s: carries uname %q gname %q atime %v ctime %v", hdr.Name, hdr.Uname, hdr.Gname, hdr.AccessTime, hdr.ChangeTime)
		}
		if strings.HasPrefix(hdr.Name, "./") || strings.HasPrefix(hdr.Name, "/") {
			t.Errorf("%s: not a plain relative name", hdr.Name)
		}
		if (hdr.Typeflag == tar.TypeDir) != strings.HasSuffix(hdr.Name, "/") {
			t.Errorf("%s: type %q, but the trailing slash says otherwise", hdr.Name, hdr.Typeflag)
		}
		for k := range hdr.PAXRecords {
			if strings.HasPrefix(k, paxXattr+"trusted.overlay.") {
				t.Errorf("%s: overlay xattr %s leaked into the tar", hdr.Name, k)
			}
		}
	}
	for i := 1; i < len(names); i++ {
		// Walk order: lexical per directory, every parent before its children.
		parent := strings.TrimSuffix(names[i], "/")
		if j := strings.LastIndex(parent, "/"); j >= 0 {
			if k := slices.Index(names, parent[:j+1]); k < 0 || k > i {
				t.Errorf("%s comes before its parent", names[i])
			}
		}
	}
	checks := []struct {
		name string
		ok   func(*tar.Header) bool
	}{
		{".wh.gone", func(h *tar.Header) bool { return h.Typeflag == tar.TypeReg && h.Size == 0 && h.Mode == 0 }},
		{"a/b/.wh.gone-too", func(h *tar.Header) bool { return h.Typeflag == tar.TypeReg && h.Size == 0 }},
		{"opq/", func(h *tar.Header) bool { return h.Typeflag == tar.TypeDir && h.Mode == 0o750 }},
		{"opq/.wh..wh..opq", func(h *tar.Header) bool { return h.Typeflag == tar.TypeReg && h.Size == 0 }},
		{"a/h2", func(h *tar.Header) bool { return h.Typeflag == tar.TypeLink && h.Linkname == "a/b/h3" }},
		{"h1", func(h *tar.Header) bool { return h.Typeflag == tar.TypeLink && h.Linkname == "a/b/h3" }},
		{"a/b/h3", func(h *tar.Header) bool { return h.Typeflag == tar.TypeReg && h.Size == 6 }},
		{"a/setuid", func(h *tar.Header) bool { return h.Mode == 0o4755 }},
		{"tmp/", func(h *tar.Header) bool { return h.Mode == 0o1777 }},
		{"a/f", func(h *tar.Header) bool {
			return h.Uid == 1000 && h.Gid == 1001 && h.PAXRecords[paxXattr+"user.kiln"] == "value"
		}},
		{"null", func(h *tar.Header) bool { return h.Typeflag == tar.TypeChar && h.Devmajor == 1 && h.Devminor == 3 }},
		{"loop", func(h *tar.Header) bool { return h.Typeflag == tar.TypeBlock && h.Devmajor == 7 }},
		{"fifo", func(h *tar.Header) bool { return h.Typeflag == tar.TypeFifo }},
		{"abs-link", func(h *tar.Header) bool { return h.Typeflag == tar.TypeSymlink && h.Linkname == "/etc/passwd" }},
	}
	for _, c := range checks {
		h, ok := byName[c.name]
		if !ok {
			t.Errorf("no entry %q in %q", c.name, names)
			continue
		}
		if !c.ok(h) {
			t.Errorf("entry %q is wrong: %+v", c.name, h)
		}
	}
	for _, gone := range []string{"gone", "sock", "opq/.wh.", ""} {
		if _, ok := byName[gone]; ok {
			t.Errorf("unexpected entry %q", gone)
		}
	}
}

func TestApplyWhiteouts(t *testing.T) {
	requireRoot(t)
	dst := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dst, "old/dir"), 0o755))
	must(t, os.WriteFile(filepath.Join(dst, "old/dir/file"), []byte("x"), 0o644))
	b := makeTar(t,
		tarEntry{name: "old/", typ: tar.TypeDir, mode: 0o755},
		tarEntry{name: "old/.wh.dir", typ: tar.TypeReg},
		tarEntry{name: ".wh.never-existed", typ: tar.TypeReg},
		tarEntry{name: "o/", typ: tar.TypeDir, mode: 0o755},
		tarEntry{name: "o/.wh..wh..opq", typ: tar.TypeReg},
		tarEntry{name: "o/kept", typ: tar.TypeReg, data: "k"},
		tarEntry{name: "implicit/.wh..wh..opq", typ: tar.TypeReg},
		tarEntry{name: ".wh..wh.plnk", typ: tar.TypeDir},
		tarEntry{name: "f", typ: tar.TypeReg, data: "1", mode: 0o600},
		tarEntry{name: "f", typ: tar.TypeReg, data: "22", mode: 0o640},
	)
	_, err := Apply(t.Context(), dst, bytes.NewReader(b))
	must(t, err)
	isWhiteout := func(rel string) bool {
		var st unix.Stat_t
		return unix.Lstat(filepath.Join(dst, rel), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
	}
	for _, rel := range []string{"old/dir", "never-existed"} {
		if !isWhiteout(rel) {
			t.Errorf("%s is not a whiteout", rel)
		}
	}
	for _, rel := range []string{"o", "implicit"} {
		if v, err := xattr.Get(filepath.Join(dst, rel), opaqueXattr); err != nil || string(v) != "y" {
			t.Errorf("%s: opaque xattr %q, %v", rel, v, err)
		}
	}
	for _, rel := range []string{".wh..wh.plnk", "o/.wh..wh..opq", ".wh.never-existed"} {
		if _, err := os.Lstat(filepath.Join(dst, rel)); err == nil {
			t.Errorf("%s was extracted as a file", rel)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dst, "f")); err != nil || string(b) != "22" {
		t.Errorf("later entry did not replace the earlier one: %q %v", b, err)
	}
}

// TestOverlayUpperDir diffs a real overlay upper dir and checks that the
// applied layer, mounted over the same lower dir, shows the same files.
func TestOverlayUpperDir(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	lower, upper, work, merged := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	for _, d := range []string{lower + "/d/sub", upper, work, merged} {
		must(t, os.MkdirAll(d, 0o755))
	}
	must(t, os.WriteFile(lower+"/x", []byte("x"), 0o644))
	must(t, os.WriteFile(lower+"/d/y", []byte("y"), 0o644))
	must(t, os.WriteFile(lower+"/keep", []byte("keep"), 0o644))
	mount := func(lowers string) {
		t.Helper()
		opts := "lowerdir=" + lowers + ",upperdir=" + upper + ",workdir=" + work
		if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
			t.Skipf("cannot mount overlay: %v", err)
		}
	}
	mount(lower)
	must(t, os.Remove(merged+"/x"))
	must(t, os.RemoveAll(merged+"/d"))
	must(t, os.Mkdir(merged+"/d", 0o755))
	must(t, os.WriteFile(merged+"/d/z", []byte("z"), 0o644))
	must(t, os.WriteFile(merged+"/new", []byte("new"), 0o644))
	want := readTree(t, merged)
	must(t, unix.Unmount(merged, 0))

	b := writeTar(t, upper)
	names := tarNames(t, b)
	for _, n := range []string{".wh.x", "d/", "d/.wh..wh..opq", "d/z", "new"} {
		if !slices.Contains(names, n) {
			t.Errorf("tar of upper dir lacks %q: %q", n, names)
		}
	}

	applied := filepath.Join(base, "applied")
	must(t, os.Mkdir(applied, 0o755))
	_, err := Apply(t.Context(), applied, bytes.NewReader(b))
	must(t, err)
	must(t, os.RemoveAll(upper))
	must(t, os.RemoveAll(work))
	must(t, os.Mkdir(upper, 0o755))
	must(t, os.Mkdir(work, 0o755))
	mount(applied + ":" + lower)
	t.Cleanup(func() { unix.Unmount(merged, 0) })
	got := readTree(t, merged)
	// Only names, types and contents: overlay reports its own inode numbers
	// and the layer does not carry the time of the merged root.
	strip := func(m map[string]node) map[string]node {
		out := map[string]node{}
		for k, n := range m {
			out[k] = node{Mode: n.Mode, Data: n.Data, Link: n.Link}
		}
		return out
	}
	if d := diffTrees(strip(want), strip(got)); d != "" {
		t.Errorf("overlay over the applied layer differs (-want +got):\n%s", d)
	}
}

func TestDeterminism(t *testing.T) {
	requireRoot(t)
	dir := buildTree(t)
	b1, b2 := writeTar(t, dir), writeTar(t, dir)
	if !bytes.Equal(b1, b2) {
		t.Fatal("two WriteTar of the same tree differ")
	}
	var z1, z2 bytes.Buffer
	d1, n1, err := Compress(t.Context(), &z1, bytes.NewReader(b1))
	must(t, err)
	d2, n2, err := Compress(t.Context(), &z2, bytes.NewReader(b2))
	must(t, err)
	if !bytes.Equal(z1.Bytes(), z2.Bytes()) || d1 != d2 || n1 != n2 {
		t.Fatal("two Compress of the same tar differ")
	}
}

func TestCompress(t *testing.T) {
	plain := make([]byte, 5<<20)
	_, _ = rand.Read(plain[:1<<20]) // part random, part zeros: spans blocks
	var gz bytes.Buffer
	diffID, size, err := Compress(t.Context(), &gz, bytes.NewReader(plain))
	must(t, err)
	if want := digest.FromBytes(plain); diffID != want || size != int64(len(plain)) {
		t.Errorf("Compress = %s, %d; want %s, %d", diffID, size, want, len(plain))
	}
	if h := gz.Bytes()[:10]; h[0] != 0x1f || h[1] != 0x8b || h[3]&0x08 != 0 || !bytes.Equal(h[4:8], []byte{0, 0, 0, 0}) {
		t.Errorf("gzip header % x: want no name and a zero time", h)
	}

	zw, err := zstd.NewWriter(nil)
	must(t, err)
	zst := zw.EncodeAll(plain, nil)
	must(t, zw.Close())

	for name, blob := range map[string][]byte{"gzip": gz.Bytes(), "zstd": zst, "plain": plain, "empty": nil} {
		t.Run(name, func(t *testing.T) {
			want := plain
			if name == "empty" {
				want = nil
			}
			rc, err := Decompress(bytes.NewReader(blob))
			must(t, err)
			got, err := io.ReadAll(rc)
			must(t, err)
			must(t, rc.Close())
			if !bytes.Equal(got, want) {
				t.Errorf("Decompress gave %d bytes, want %d", len(got), len(want))
			}
		})
	}
}

func TestApplyRefusesSparse(t *testing.T) {
	// tar.Writer cannot write sparse entries: write the PAX records as a
	// regular file and turn its header into a PAX one by hand.
	record := func(k, v string) string {
		n := len(k) + len(v) + 3
		n += len(strconv.Itoa(n + len(strconv.Itoa(n))))
		return fmt.Sprintf("%d %s=%s\n", n, k, v)
	}
	records := record("GNU.sparse.realsize", "1099511627776") + record("GNU.sparse.major", "1") + record("GNU.sparse.minor", "0")
	sparseMap := "1\n0\n0\n" + strings.Repeat("\x00", 512-6) // one empty data block: all hole
	b := makeTar(t,
		tarEntry{name: "PaxHeaders/sparse", typ: tar.TypeReg, data: records},
		tarEntry{name: "sparse", typ: tar.TypeReg, data: sparseMap})
	b[156] = tar.TypeXHeader
	sum := 0
	copy(b[148:156], "        ")
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	if _, err := Apply(t.Context(), t.TempDir(), bytes.NewReader(b)); err == nil || !strings.Contains(err.Error(), "sparse files are not supported") {
		t.Errorf("Apply of a sparse entry: %v, want an error about sparse files", err)
	}
}

func TestApplyStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	b := makeTar(t, tarEntry{name: "f", typ: tar.TypeReg, data: "x"})
	if _, err := Apply(ctx, t.TempDir(), bytes.NewReader(b)); err == nil {
		t.Error("Apply with a cancelled context succeeded")
	}
}
