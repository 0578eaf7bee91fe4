//go:build linux

package fscopy

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// parentsFixture is the tree of BuildKit's testCopyRelativeParents.
var parentsFixture = []ent{
	{"d", "test/a/b/c/d/e", 0o755, ""},
	{"d", "test/a/b2/c/d/e", 0o755, ""},
	{"d", "test/a/b/c2/d/e", 0o755, ""},
	{"d", "test/a/b/c2/d/e2", 0o755, ""},
	{"f", "test/a/b/c/d/foo", 0o644, "foo"},
	{"f", "test/a/b/c/d/e/bay", 0o644, "bay"},
	{"f", "test/a/b2/c/d/e/bar", 0o644, "bar"},
	{"f", "test/a/b/c2/d/e/baz", 0o644, "baz"},
	{"f", "test/a/b/c2/d/e2/baz", 0o644, "baz2"},
	{"f", "top.txt", 0o600, "top"},
	{"d", "skip", 0o700, ""},
	{"f", "skip/x.txt", 0o644, "x"},
}

func TestCopyParents(t *testing.T) {
	var notFound *NotFoundError
	tests := []struct {
		name    string
		sources []string
		dest    string
		want    []string // paths below /out, sorted
		wantErr any
	}{
		{name: "pivot keeps what follows it", sources: []string{"/test/a/b/./c/d"}, dest: "/out/",
			want: []string{"c", "c/d", "c/d/e", "c/d/e/bay", "c/d/foo"}},
		{name: "no pivot keeps the whole path", sources: []string{"./test/a/b/c/d"}, dest: "/out/",
			want: []string{"test", "test/a", "test/a/b", "test/a/b/c", "test/a/b/c/d", "test/a/b/c/d/e", "test/a/b/c/d/e/bay", "test/a/b/c/d/foo"}},
		{name: "trailing /. is no pivot", sources: []string{"/test/a/b/c/d/."}, dest: "/out/",
			want: []string{"test", "test/a", "test/a/b", "test/a/b/c", "test/a/b/c/d", "test/a/b/c/d/e", "test/a/b/c/d/e/bay", "test/a/b/c/d/foo"}},
		{name: "first pivot counts", sources: []string{"/test/a/./b/./c"}, dest: "/out/",
			want: []string{"b", "b/c", "b/c/d", "b/c/d/e", "b/c/d/e/bay", "b/c/d/foo"}},
		{name: "wildcard after the pivot", sources: []string{"/test/a/./*/c"}, dest: "/out/",
			want: []string{"b", "b/c", "b/c/d", "b/c/d/e", "b/c/d/e/bay", "b/c/d/foo", "b2", "b2/c", "b2/c/d", "b2/c/d/e", "b2/c/d/e/bar"}},
		{name: "wildcard before the pivot and **", sources: []string{"/test/a/b*/./c/**/e"}, dest: "/out/",
			want: []string{"c", "c/d", "c/d/e", "c/d/e/bar", "c/d/e/bay"}},
		{name: "two sources", sources: []string{"/test/a/b/c*/./d/**/baz", "/test/a/b*/./c/**/bar"}, dest: "/out/",
			want: []string{"c", "c/d", "c/d/e", "c/d/e/bar", "d", "d/e", "d/e/baz", "d/e2", "d/e2/baz"}},
		{name: "wildcard file without pivot", sources: []string{"test/a/b/c/d/f*"}, dest: "/out",
			want: []string{"test", "test/a", "test/a/b", "test/a/b/c", "test/a/b/c/d", "test/a/b/c/d/foo"}},
		{name: "plain file", sources: []string{"top.txt"}, dest: "/out/", want: []string{"top.txt"}},
		{name: "missing literal path", sources: []string{"test/a/nope"}, dest: "/out/", wantErr: &notFound},
		{name: "missing after pivot", sources: []string{"test/./nope"}, dest: "/out/", wantErr: &notFound},
		{name: "wildcard matching nothing", sources: []string{"test/*/nope*"}, dest: "/out/", want: []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := t.TempDir(), t.TempDir()
			build(t, src, parentsFixture)
			o := Options{Sources: tc.sources, Dest: tc.dest, Parents: true}
			err := Copy(context.Background(), src, dst, o)
			if tc.wantErr != nil {
				checkErr(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("Copy: %v", err)
			}
			got := []string{}
			for p := range tree(t, dst) {
				if r, ok := strings.CutPrefix(p, "out/"); ok {
					got = append(got, r)
				}
			}
			sort.Strings(got)
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("copied\n  %v\nwant\n  %v", got, tc.want)
			}
			// The walk the cache key hashes sees the same entries.
			var walked []string
			err = Walk(context.Background(), src, o, func(rel string, fi os.FileInfo) error {
				if !fi.IsDir() {
					walked = append(walked, rel)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("Walk: %v", err)
			}
			files := 0
			for _, p := range got {
				if fi, err := os.Lstat(dst + "/out/" + p); err == nil && !fi.IsDir() {
					files++
				}
			}
			if len(walked) != files {
				t.Errorf("walk saw files %v, copy made %d", walked, files)
			}
		})
	}
}

func TestCopyParentsKeepsParentMetadata(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	build(t, src, parentsFixture)
	if err := os.Chmod(src+"/test/a", 0o711); err != nil {
		t.Fatal(err)
	}
	if err := Copy(context.Background(), src, dst, Options{Sources: []string{"test/a/b/c/d/foo"}, Dest: "/", Parents: true}); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, dst)["test/a"]; got != "d 0711" {
		t.Errorf("parent test/a = %q, want its source mode d 0711", got)
	}
}

func TestCopySourceExcludes(t *testing.T) {
	// --exclude patterns match paths relative to each source (BuildKit's
	// testExcludedFilesOnCopy); .dockerignore's (Excludes) the context's.
	ents := []ent{
		{"f", "dir1/a.png", 0o644, "1"}, {"f", "dir1/b.txt", 0o644, "2"},
		{"f", "dir3/c.mp3", 0o644, "3"}, {"f", "dir3/d.mpeg", 0o644, "4"},
	}
	tests := []struct {
		name string
		o    Options
		want []string
	}{
		{"relative to a dir source", Options{Sources: []string{"dir3/"}, Dest: "/o/", SourceExcludes: []string{"*.mp3"}}, []string{"o", "o/d.mpeg"}},
		{"relative to each wildcard match", Options{Sources: []string{"dir*"}, Dest: "/o/", SourceExcludes: []string{"*.mp3", "*.png"}},
			[]string{"o", "o/b.txt", "o/d.mpeg"}},
		{"from the context root", Options{Sources: []string{"."}, Dest: "/o/", SourceExcludes: []string{"*/*.png", "*/*.mp3"}},
			[]string{"o", "o/dir1", "o/dir1/b.txt", "o/dir3", "o/dir3/d.mpeg"}},
		{"root-relative excludes are not", Options{Sources: []string{"dir3/"}, Dest: "/o/", Excludes: []string{"*.mp3"}},
			[]string{"o", "o/c.mp3", "o/d.mpeg"}},
		{"everything excluded leaves the dest", Options{Sources: []string{"dir*"}, Dest: "/o", SourceExcludes: []string{"*"}}, []string{"o"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := t.TempDir(), t.TempDir()
			build(t, src, ents)
			if err := Copy(context.Background(), src, dst, tc.o); err != nil {
				t.Fatal(err)
			}
			var got []string
			for p := range tree(t, dst) {
				got = append(got, p)
			}
			sort.Strings(got)
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCopyMergeTakesSourceMetadata(t *testing.T) {
	needRoot(t, "chown")
	src, dst := t.TempDir(), t.TempDir()
	build(t, src, srcFixture)
	build(t, dst, []ent{{"d", "out/sub", 0o777, ""}})
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, p := range []string{"dir", "dir/sub"} {
		if err := os.Chtimes(filepath.Join(src, p), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Lchown(filepath.Join(dst, "out/sub"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dst, "out"), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := Copy(context.Background(), src, dst, Options{Sources: []string{"dir"}, Dest: "/out", ContextOwner: true}); err != nil {
		t.Fatal(err)
	}
	sub := statOf(t, filepath.Join(dst, "out/sub"))
	if sub.Mode&0o7777 != 0o755 || sub.Uid != 0 || sub.Gid != 0 || sub.Mtim.Sec != old.Unix() {
		t.Errorf("existing out/sub: %o %d:%d mtime %d, want the source's 755 0:0 %d", sub.Mode&0o7777, sub.Uid, sub.Gid, sub.Mtim.Sec, old.Unix())
	}
	out := statOf(t, filepath.Join(dst, "out"))
	if out.Mode&0o7777 != 0o711 || out.Mtim.Sec != old.Unix() {
		t.Errorf("dest out: %o mtime %d, want its own mode 711 and the source's time %d", out.Mode&0o7777, out.Mtim.Sec, old.Unix())
	}
}
