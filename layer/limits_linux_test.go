package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tmpfsJail is newJail on a tmpfs of size bytes: a bomb that the code
// does not stop can only fill that.
func tmpfsJail(t testing.TB, size int64) *jail {
	t.Helper()
	base := t.TempDir()
	must(t, unix.Mount("tmpfs", base, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", size)))
	t.Cleanup(func() { _ = unix.Unmount(base, unix.MNT_DETACH) })
	return jailIn(t, base)
}

// jailIn is newJail in base, an empty directory.
func jailIn(t testing.TB, base string) *jail {
	t.Helper()
	j := &jail{base: base, root: filepath.Join(base, "root"), outside: filepath.Join(base, "outside")}
	must(t, os.Mkdir(j.root, 0o755))
	must(t, os.Mkdir(j.outside, 0o755))
	must(t, os.WriteFile(filepath.Join(j.outside, "sentinel"), []byte("untouched"), 0o644))
	must(t, os.Symlink("sentinel", filepath.Join(j.outside, "sentinel-link")))
	j.before = readTree(t, j.outside)
	j.baseNames = dirNames(t, base)
	return j
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// bombStream streams a layer whose entry declares size bytes and carries
// at most real bytes of zeros.
func bombStream(name string, size, real int64) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Size: size, Mode: 0o644})
		if err == nil {
			_, err = io.CopyN(tw, zeroReader{}, real)
		}
		pw.CloseWithError(errors.Join(err, errors.New("test generator stopped")))
	}()
	return pr
}

// deepStream streams a layer of levels nested directories, each with a
// file.
func deepStream(levels int) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		var err error
		name := ""
		for i := 0; i < levels && err == nil; i++ {
			name += "a/"
			err = tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755})
			if err == nil {
				err = tw.WriteHeader(&tar.Header{Name: name + "f", Typeflag: tar.TypeReg, Mode: 0o644})
			}
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr
}

// sparseLayer is a layer with one PAX (GNU 1.0) sparse entry declaring
// realsize bytes, all hole.
func sparseLayer(t testing.TB, name string, realsize int64) []byte {
	record := func(k, v string) string {
		n := len(k) + len(v) + 3
		n += len(strconv.Itoa(n + len(strconv.Itoa(n))))
		return fmt.Sprintf("%d %s=%s\n", n, k, v)
	}
	records := record("GNU.sparse.realsize", strconv.FormatInt(realsize, 10)) + record("GNU.sparse.major", "1") +
		record("GNU.sparse.minor", "0") + record("GNU.sparse.name", name)
	b := makeTar(t,
		tarEntry{name: "PaxHeaders/" + name, typ: tar.TypeReg, data: records},
		tarEntry{name: "GNUSparseFile.0/" + name, typ: tar.TypeReg, data: "1\n0\n0\n" + strings.Repeat("\x00", 512-6)})
	b[156] = tar.TypeXHeader
	sum := 0
	copy(b[148:156], "        ")
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
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

// Finding 1 of issue #7 for pulled layers: a layer over its limits fails
// on the header of the entry, naming the layer, the entry and the limit.
func TestApplyLimits(t *testing.T) {
	requireRoot(t)
	const name = "layer sha256:0123abcd"
	opts := ApplyOptions{Limits: Limits{MaxBytes: 1 << 30}, Name: name}
	t.Run("20GiB declared", func(t *testing.T) {
		j := tmpfsJail(t, 96<<20)
		r := bombStream("big", 20<<30, 64<<20)
		defer r.Close()
		_, err := ApplyWith(t.Context(), j.root, r, opts)
		wantErr(t, err, "applying "+name+" to ", `: entry "big" declares 20GiB, more than the 1GiB archive limit (build.maxArchiveSize in $KILN_ROOT/config.json)`)
		if got := dirNames(t, j.root); len(got) != 0 {
			t.Errorf("the refused entry was written: %v", got)
		}
		j.check(t)
	})
	t.Run("over the total", func(t *testing.T) {
		j := tmpfsJail(t, 96<<20)
		var ents []tarEntry
		for i := range 5 {
			ents = append(ents, tarEntry{name: fmt.Sprintf("f%d", i), typ: tar.TypeReg, data: strings.Repeat("x", 1<<20)})
		}
		_, err := ApplyWith(t.Context(), j.root, bytes.NewReader(makeTar(t, ents...)), ApplyOptions{Limits: Limits{MaxBytes: 4 << 20}, Name: name})
		wantErr(t, err, `entry "f4" brings what the archive declares to 5MiB, more than the 4MiB archive limit`)
		j.check(t)
	})
	t.Run("100GiB sparse", func(t *testing.T) {
		j := tmpfsJail(t, 96<<20)
		_, err := ApplyWith(t.Context(), j.root, bytes.NewReader(sparseLayer(t, "sparse", 100<<30)), opts)
		wantErr(t, err, `entry "sparse" declares 100GiB, more than the 1GiB archive limit`)
		j.check(t)
	})
	t.Run("names", func(t *testing.T) {
		j := tmpfsJail(t, 96<<20)
		long := strings.Repeat("d/", 2500)
		for ent, want := range map[tarEntry]string{
			{name: long + "f", typ: tar.TypeReg}:                 "has a name of 5001 bytes, more than the limit of 4096",
			{name: "l", link: long, typ: tar.TypeSymlink}:        "has a link target of 5000 bytes, more than the limit of 4096",
			{name: strings.Repeat("a/", 1025), typ: tar.TypeDir}: "is 1025 levels deep, more than the limit of 1024",
		} {
			_, err := ApplyWith(t.Context(), j.root, bytes.NewReader(makeTar(t, ent)), opts)
			wantErr(t, err, name, want)
		}
		j.check(t)
	})
}

// Deep trees: each entry costs a few system calls however deep, so the
// 10,000-level layer fails at once on the depth limit and a 1,000-level
// one applies in well under a second (both took minutes). On a tmpfs, to
// time the code, not the disk.
func TestApplyDeepTrees(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		levels int
		err    string
	}{{10000, "is 1025 levels deep, more than the limit of 1024"}, {1000, ""}} {
		t.Run(strconv.Itoa(tc.levels), func(t *testing.T) {
			j := tmpfsJail(t, 64<<20)
			r := deepStream(tc.levels)
			defer r.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			start := time.Now()
			_, err := Apply(ctx, j.root, r)
			d := time.Since(start)
			t.Logf("%d levels: %v (%v)", tc.levels, d, err)
			if tc.err != "" {
				wantErr(t, err, tc.err)
			} else if err != nil {
				t.Fatal(err)
			}
			if d > 10*time.Second {
				t.Errorf("took %v", d)
			}
			j.check(t)
		})
	}
}

// Replacement and hard links as BuildKit (containerd's and moby's archive
// code) has them.
func TestApplyLinksAndReplacement(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		name  string
		ents  []tarEntry
		err   string
		check func(t *testing.T, root string)
	}{
		{"hard link to a directory", []tarEntry{{name: "d/", typ: tar.TypeDir}, {name: "h", link: "d", typ: tar.TypeLink}},
			`hard link target "d" is a directory`, nil},
		{"hard link to itself", []tarEntry{{name: "f", typ: tar.TypeReg, data: "data"}, {name: "f", link: "f", typ: tar.TypeLink}}, "",
			func(t *testing.T, root string) {
				if b, err := os.ReadFile(root + "/f"); err != nil || string(b) != "data" {
					t.Errorf("f: %q, %v", b, err)
				}
			}},
		{"hard link to a symlink", []tarEntry{{name: "f", typ: tar.TypeReg, data: "data"}, {name: "s", link: "f", typ: tar.TypeSymlink},
			{name: "h", link: "s", typ: tar.TypeLink}}, "",
			func(t *testing.T, root string) {
				if l, err := os.Readlink(root + "/h"); err != nil || l != "f" {
					t.Errorf("h: %q, %v; want the symlink itself", l, err)
				}
			}},
		{"symlink over a resolved directory", []tarEntry{{name: "a/", typ: tar.TypeDir}, {name: "a/x", typ: tar.TypeReg},
			{name: "b/", typ: tar.TypeDir}, {name: "a", link: "b", typ: tar.TypeSymlink}, {name: "a/y", typ: tar.TypeReg, data: "y"}}, "",
			func(t *testing.T, root string) {
				if b, err := os.ReadFile(root + "/b/y"); err != nil || string(b) != "y" {
					t.Errorf("b/y: %q, %v", b, err)
				}
				if _, err := os.Lstat(root + "/b/x"); err == nil {
					t.Error("b/x exists")
				}
			}},
		{"symlink then dir", []tarEntry{{name: "t/", typ: tar.TypeDir}, {name: "d", link: "t", typ: tar.TypeSymlink},
			{name: "d/", typ: tar.TypeDir}, {name: "d/f", typ: tar.TypeReg}}, "",
			func(t *testing.T, root string) {
				if fi, err := os.Lstat(root + "/d"); err != nil || !fi.IsDir() {
					t.Errorf("d is not a directory: %v", err)
				}
				if _, err := os.Lstat(root + "/t/f"); err == nil {
					t.Error("d/f went through the symlink")
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJail(t)
			_, err := Apply(t.Context(), j.root, bytes.NewReader(makeTar(t, tc.ents...)))
			if tc.err != "" {
				wantErr(t, err, tc.err)
			} else if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, j.root)
			}
			j.check(t)
		})
	}
}
