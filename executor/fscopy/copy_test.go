//go:build linux

package fscopy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/xattr"
)

// fileOf is how tree describes a fixture file copied unchanged.
func fileOf(mode, src string) string { return "f " + mode + " " + src }

// dirContents is what copying the fixture's dir into out produces.
func dirContents(out, outMode string) map[string]string {
	return map[string]string{
		out:               outMode,
		out + "/x.go":     fileOf("0755", "dir/x.go"),
		out + "/y.log":    fileOf("0644", "dir/y.log"),
		out + "/keep.txt": fileOf("0644", "dir/keep.txt"),
		out + "/sub":      "d 0755",
		out + "/sub/z":    fileOf("4755", "dir/sub/z"),
		out + "/sticky":   "d 1777",
		out + "/lnk":      "l x.go",
		out + "/h1":       fileOf("0640", "dir/h1"),
		out + "/h2":       fileOf("0640", "dir/h1"),
	}
}

func with(m map[string]string, kv ...string) map[string]string {
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(m, kv[i])
		} else {
			m[kv[i]] = kv[i+1]
		}
	}
	return m
}

func TestCopy(t *testing.T) {
	needRoot(t, "created parent dirs are chowned to 0:0")
	var notFound *NotFoundError
	tests := []struct {
		name    string
		src     []ent // nil = srcFixture
		dest    []ent // initial destination
		opts    Options
		want    map[string]string
		wantErr any // error value for errors.Is, or **T for errors.As
	}{
		{name: "file to file", opts: Options{Sources: []string{"a.txt"}, Dest: "/b.txt"},
			want: map[string]string{"b.txt": fileOf("0644", "a.txt")}},
		{name: "leading slash in source ignored", opts: Options{Sources: []string{"/dir/x.go"}, Dest: "/x"},
			want: map[string]string{"x": fileOf("0755", "dir/x.go")}},
		{name: "file to dir with slash", opts: Options{Sources: []string{"b.txt"}, Dest: "/d/"},
			want: map[string]string{"d": "d 0755", "d/b.txt": fileOf("0600", "b.txt")}},
		{name: "file to existing dir without slash", dest: []ent{{"d", "d", 0o700, ""}},
			opts: Options{Sources: []string{"a.txt"}, Dest: "/d"},
			want: map[string]string{"d": "d 0700", "d/a.txt": fileOf("0644", "a.txt")}},
		{name: "file over existing file", dest: []ent{{"f", "a", 0o600, "old"}},
			opts: Options{Sources: []string{"a.txt"}, Dest: "/a"},
			want: map[string]string{"a": fileOf("0644", "a.txt")}},
		{name: "missing parents created", opts: Options{Sources: []string{"a.txt"}, Dest: "/x/y/z.txt"},
			want: map[string]string{"x": "d 0755", "x/y": "d 0755", "x/y/z.txt": fileOf("0644", "a.txt")}},
		{name: "dir contents", opts: Options{Sources: []string{"dir"}, Dest: "/out"},
			want: dirContents("out", "d 0755")},
		{name: "dir contents with trailing slashes", opts: Options{Sources: []string{"dir/"}, Dest: "/out/"},
			want: dirContents("out", "d 0755")},
		// The dest keeps its metadata; an existing dir below it takes the
		// source's (BuildKit: fsutil copy with overwriteTargetMetadata).
		{name: "dir merged into existing dir: dest kept, subdirs take the source's",
			dest: []ent{{"d", "out", 0o700, ""}, {"f", "out/old", 0o644, "old"}, {"d", "out/sub", 0o711, ""}},
			opts: Options{Sources: []string{"dir"}, Dest: "/out"},
			want: with(dirContents("out", "d 0700"), "out/old", "f 0644 old", "out/sub", "d 0755")},
		{name: "dir onto existing file", dest: []ent{{"f", "out", 0o644, "old"}},
			opts: Options{Sources: []string{"dir"}, Dest: "/out"}, wantErr: errAny},
		{name: "nested dir onto existing file", dest: []ent{{"d", "out", 0o755, ""}, {"f", "out/sub", 0o644, "x"}},
			opts: Options{Sources: []string{"dir"}, Dest: "/out/"}, wantErr: errAny},
		{name: "file onto nested existing dir", dest: []ent{{"d", "out", 0o755, ""}, {"d", "out/x.go", 0o755, ""}},
			opts: Options{Sources: []string{"dir"}, Dest: "/out/"}, wantErr: errAny},
		{name: "whole source root", src: []ent{{"f", "one", 0o644, ""}, {"d", "two", 0o700, ""}, {"f", "two/three", 0o600, ""}},
			opts: Options{Sources: []string{"."}, Dest: "/"},
			want: map[string]string{"one": fileOf("0644", "one"), "two": "d 0700", "two/three": fileOf("0600", "two/three")}},
		{name: "wildcard", opts: Options{Sources: []string{"*.txt"}, Dest: "/w/"},
			want: map[string]string{"w": "d 0755", "w/a.txt": fileOf("0644", "a.txt"), "w/b.txt": fileOf("0600", "b.txt"),
				"w/link.txt": fileOf("0644", "a.txt"), "w/we[ird].txt": fileOf("0644", "we[ird].txt")}},
		{name: "wildcard with bracket escape", opts: Options{Sources: []string{"we[[]ird].txt"}, Dest: "/w/"},
			want: map[string]string{"w": "d 0755", "w/we[ird].txt": fileOf("0644", "we[ird].txt")}},
		{name: "wildcard with backslash escape", opts: Options{Sources: []string{`we\[ird?.txt`}, Dest: "/w/"},
			want: map[string]string{"w": "d 0755", "w/we[ird].txt": fileOf("0644", "we[ird].txt")}},
		{name: "wildcard in subdir", opts: Options{Sources: []string{"dir/*.go", "d?r/s*/z"}, Dest: "/w/"},
			want: map[string]string{"w": "d 0755", "w/x.go": fileOf("0755", "dir/x.go"), "w/z": fileOf("4755", "dir/sub/z")}},
		{name: "wildcard matching a dir copies its contents", opts: Options{Sources: []string{"d*"}, Dest: "/w/"},
			want: with(dirContents("w", "d 0755"), "w/dangling", "l nowhere")},
		{name: "wildcard no match", opts: Options{Sources: []string{"nomatch*"}, Dest: "/w/"},
			want: map[string]string{}},
		{name: "wildcard no match next to a literal", opts: Options{Sources: []string{"a.txt", "nomatch*"}, Dest: "/w/"},
			want: map[string]string{"w": "d 0755", "w/a.txt": fileOf("0644", "a.txt")}},
		{name: "literal missing", opts: Options{Sources: []string{"a.txt", "nope.txt"}, Dest: "/w/"}, wantErr: &notFound},
		{name: "missing below a file", opts: Options{Sources: []string{"a.txt/x"}, Dest: "/w"}, wantErr: &notFound},
		{name: "multiple sources without slash", opts: Options{Sources: []string{"a.txt", "b.txt"}, Dest: "/w"},
			wantErr: ErrDestNotDir},
		{name: "multiple sources onto existing dir", dest: []ent{{"d", "w", 0o755, ""}},
			opts: Options{Sources: []string{"a.txt", "b.txt"}, Dest: "/w"},
			want: map[string]string{"w": "d 0755", "w/a.txt": fileOf("0644", "a.txt"), "w/b.txt": fileOf("0600", "b.txt")}},
		{name: "wildcard matching several without slash", opts: Options{Sources: []string{"[ab].txt"}, Dest: "/w"}, wantErr: ErrDestNotDir},
		{name: "wildcard matching one file names the file", opts: Options{Sources: []string{"*.md"}, Dest: "/w"},
			want: map[string]string{"w": fileOf("0644", "c.md")}},
		{name: "dotdot source stays in root", opts: Options{Sources: []string{"../../etc/passwd"}, Dest: "/p"},
			want: map[string]string{"p": fileOf("0644", "etc/passwd")}},
		{name: "absolute source symlink stays in root", opts: Options{Sources: []string{"esc/passwd"}, Dest: "/p"},
			want: map[string]string{"p": fileOf("0644", "etc/passwd")}},
		{name: "dotdot source symlink stays in root", opts: Options{Sources: []string{"esc2/passwd"}, Dest: "/p"},
			want: map[string]string{"p": fileOf("0644", "etc/passwd")}},
		{name: "top-level symlink is followed", opts: Options{Sources: []string{"link.txt"}, Dest: "/o"},
			want: map[string]string{"o": fileOf("0644", "a.txt")}},
		{name: "top-level dir symlink is followed", opts: Options{Sources: []string{"linkdir"}, Dest: "/o"},
			want: map[string]string{"o": "d 0755", "o/z": fileOf("4755", "dir/sub/z")}},
		{name: "dangling symlink copied as link", opts: Options{Sources: []string{"dangling"}, Dest: "/o"},
			want: map[string]string{"o": "l nowhere"}},
		{name: "dest symlink with dotdot resolves in root", dest: []ent{{"l", "out", 0, "../../../.."}},
			opts: Options{Sources: []string{"a.txt"}, Dest: "/out/x"},
			want: map[string]string{"out": "l ../../../..", "x": fileOf("0644", "a.txt")}},
		{name: "dest symlink to file is replaced, not written through",
			dest: []ent{{"f", "target", 0o600, "keep"}, {"l", "l", 0, "/target"}},
			opts: Options{Sources: []string{"a.txt"}, Dest: "/l"},
			want: map[string]string{"target": "f 0600 keep", "l": fileOf("0644", "a.txt")}},
		{name: "dest symlink to dir is a dir",
			dest: []ent{{"d", "usr/lib", 0o755, ""}, {"l", "lib", 0, "usr/lib"}},
			opts: Options{Sources: []string{"a.txt"}, Dest: "/lib"},
			want: map[string]string{"usr": "d 0755", "usr/lib": "d 0755", "lib": "l usr/lib", "usr/lib/a.txt": fileOf("0644", "a.txt")}},
		{name: "nested dir merges through dest symlink (merged /usr)",
			src:  []ent{{"d", "r", 0o755, ""}, {"d", "r/lib", 0o700, ""}, {"f", "r/lib/x.so", 0o644, ""}},
			dest: []ent{{"d", "usr/lib", 0o755, ""}, {"l", "lib", 0, "/usr/lib"}},
			opts: Options{Sources: []string{"r"}, Dest: "/"},
			want: map[string]string{"usr": "d 0755", "usr/lib": "d 0755", "lib": "l /usr/lib", "usr/lib/x.so": fileOf("0644", "r/lib/x.so")}},
		{name: "excludes inside a dir", opts: Options{Sources: []string{"dir"}, Dest: "/out", Excludes: []string{"dir/*.log", "dir/sub", "dir/h?"}},
			want: with(dirContents("out", "d 0755"), "out/y.log", "", "out/sub", "", "out/sub/z", "", "out/h1", "", "out/h2", "")},
		{name: "excluded literal", opts: Options{Sources: []string{"c.md"}, Dest: "/o", Excludes: []string{"*.md"}}, wantErr: &notFound},
		{name: "excluded symlink target", opts: Options{Sources: []string{"linkdir"}, Dest: "/o", Excludes: []string{"dir/sub"}}, wantErr: &notFound},
		{name: "excluded wildcard matches skipped", opts: Options{Sources: []string{"*.txt", "*.md"}, Dest: "/w/", Excludes: []string{"*.md", "link*", "we*"}},
			want: map[string]string{"w": "d 0755", "w/a.txt": fileOf("0644", "a.txt"), "w/b.txt": fileOf("0600", "b.txt")}},
		{name: "exclusion exception", opts: Options{Sources: []string{"dir"}, Dest: "/out", Excludes: []string{"dir", "!dir/keep.txt", "!dir/sub/z"}},
			want: map[string]string{"out": "d 0755", "out/keep.txt": fileOf("0644", "dir/keep.txt"), "out/sub": "d 0755", "out/sub/z": fileOf("4755", "dir/sub/z")}},
		{name: "chmod octal", opts: Options{Sources: []string{"dir/sub", "a.txt"}, Dest: "/o/", Chmod: "0640"},
			want: map[string]string{"o": "d 0640", "o/z": fileOf("0640", "dir/sub/z"), "o/a.txt": fileOf("0640", "a.txt")}},
		{name: "chmod symbolic", opts: Options{Sources: []string{"a.txt", "b.txt", "dir/x.go", "dir/lnk"}, Dest: "/o/", Chmod: "g+w,o="},
			want: map[string]string{"o": "d 0770", "o/a.txt": fileOf("0660", "a.txt"), "o/b.txt": fileOf("0620", "b.txt"),
				"o/x.go": fileOf("0770", "dir/x.go"), "o/lnk": fileOf("0770", "dir/x.go")}},
		{name: "chmod applied to created parents (fsutil#228)", opts: Options{Sources: []string{"a.txt"}, Dest: "/p/q/a", Chmod: "0600"},
			want: map[string]string{"p": "d 0600", "p/q": "d 0600", "p/q/a": fileOf("0600", "a.txt")}},
		{name: "symbolic chmod of created parents starts from 0755", opts: Options{Sources: []string{"a.txt"}, Dest: "/p/a", Chmod: "g+w"},
			want: map[string]string{"p": "d 0775", "p/a": fileOf("0664", "a.txt")}},
		{name: "bad chmod", opts: Options{Sources: []string{"a.txt"}, Dest: "/a", Chmod: "u+q"}, wantErr: errAny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := t.TempDir(), t.TempDir()
			if tc.src == nil {
				tc.src = srcFixture
			}
			build(t, src, tc.src)
			build(t, dst, tc.dest)
			before := tree(t, dst)
			err := Copy(context.Background(), src, dst, tc.opts)
			if tc.wantErr != nil {
				checkErr(t, err, tc.wantErr)
				// A failed copy may leave earlier files (the caller drops
				// the layer) but must not have damaged what was there.
				got := tree(t, dst)
				for k, v := range before {
					if got[k] != v {
						t.Errorf("%s changed to %q from %q", k, got[k], v)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Copy: %v", err)
			}
			diffTrees(t, tree(t, dst), tc.want)
		})
	}
}

var errAny = errors.New("any error")

func checkErr(t *testing.T, err error, want any) {
	t.Helper()
	switch w := want.(type) {
	case **NotFoundError:
		if !errors.As(err, w) {
			t.Fatalf("error = %v, want a *NotFoundError", err)
		}
	case error:
		if err == nil || (w != errAny && !errors.Is(err, w)) {
			t.Fatalf("error = %v, want %v", err, w)
		}
	}
}

func TestNotFoundErrorText(t *testing.T) {
	src := t.TempDir()
	err := Copy(context.Background(), src, t.TempDir(), Options{Sources: []string{"/missing"}, Dest: "/"})
	if err == nil || err.Error() != `"/missing": not found` {
		t.Fatalf("error = %v", err)
	}
	var nf *NotFoundError
	if err := Walk(context.Background(), src, Options{Sources: []string{"missing"}}, func(string, os.FileInfo) error { return nil }); !errors.As(err, &nf) {
		t.Fatalf("Walk error = %v, want NotFoundError", err)
	}
	// A source that exists but is excluded says which pattern hides it;
	// a later "!" re-include of it leaves it found.
	if err := os.WriteFile(filepath.Join(src, "secret"), []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		excludes []string
		want     string
	}{
		{[]string{"secret"}, "secret"},
		{[]string{"*.md", "sec*", "other"}, "sec*"},
		{[]string{"secret", "!secret", "s*"}, "s*"},
	} {
		err := Walk(context.Background(), src, Options{Sources: []string{"secret"}, Excludes: tc.excludes}, func(string, os.FileInfo) error { return nil })
		if !errors.As(err, &nf) || nf.ExcludedBy != tc.want {
			t.Errorf("excludes %q: error = %v, want one naming %q", tc.excludes, err, tc.want)
		}
		if tc.want != "" && !strings.Contains(err.Error(), "excluded by the pattern") {
			t.Errorf("excludes %q: error text %q does not say why", tc.excludes, err)
		}
	}
	err = Walk(context.Background(), src, Options{Sources: []string{"secret"}, Excludes: []string{"secret", "!secret"}}, func(string, os.FileInfo) error { return nil })
	if err != nil {
		t.Errorf("re-included source: %v", err)
	}
}

// A symlink in destRoot pointing to an absolute path outside must land
// inside destRoot, never in the real target.
func TestCopyDestEscape(t *testing.T) {
	needRoot(t, "created parent dirs are chowned to 0:0")
	base := t.TempDir()
	src, dst, outside := filepath.Join(base, "src"), filepath.Join(base, "dst"), filepath.Join(base, "outside")
	for _, d := range []string{src, dst, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	build(t, src, srcFixture)
	build(t, dst, []ent{{"l", "abs", 0, outside}, {"l", "rel", 0, "../outside"}, {"l", "deep", 0, "../../../../../../" + outside + "/f"}})
	for _, dest := range []string{"/abs/", "/rel/", "/deep", "/abs/sub/f", "/rel/../../outside/g"} {
		if err := Copy(context.Background(), src, dst, Options{Sources: []string{"a.txt", "dir"}, Dest: dest + "/"}); err != nil {
			t.Fatalf("Copy to %s: %v", dest, err)
		}
		if err := Copy(context.Background(), src, dst, Options{Sources: []string{"a.txt"}, Dest: dest}); err != nil {
			t.Fatalf("Copy to %s: %v", dest, err)
		}
	}
	if got := tree(t, outside); len(got) != 0 {
		t.Fatalf("wrote outside destRoot: %v", got)
	}
	if _, err := os.Stat(filepath.Join(dst, outside, "a.txt")); err != nil {
		t.Fatalf("expected the copy inside destRoot: %v", err)
	}
}

func TestCopyPreservesMetadata(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	build(t, src, srcFixture)
	if err := Copy(context.Background(), src, dst, Options{Sources: []string{"dir"}, Dest: "/out"}); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"", "x.go", "sub", "sub/z", "sticky", "lnk", "h1"} {
		s, d := statOf(t, filepath.Join(src, "dir", rel)), statOf(t, filepath.Join(dst, "out", rel))
		if rel == "" {
			// The contents' dest is made 0755 (fsutil#47); it keeps the times.
			s.Mode = s.Mode&^0o7777 | 0o755
		}
		if s.Mode != d.Mode {
			t.Errorf("%s: mode %o, want %o", rel, d.Mode, s.Mode)
		}
		if d.Mtim != s.Mtim {
			t.Errorf("%s: mtime %v, want %v", rel, d.Mtim, s.Mtim)
		}
	}
	// Hardlinks within one copy stay linked.
	h1, h2 := statOf(t, filepath.Join(dst, "out/h1")), statOf(t, filepath.Join(dst, "out/h2"))
	if h1.Ino != h2.Ino || h1.Nlink != 2 {
		t.Errorf("h1/h2 not linked: inodes %d %d nlink %d", h1.Ino, h2.Ino, h1.Nlink)
	}
	if s := statOf(t, filepath.Join(src, "dir/h1")); s.Ino == h1.Ino {
		t.Error("dest shares the source inode")
	}
}

func TestCopyXattrs(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	build(t, src, srcFixture)
	p := filepath.Join(src, "a.txt")
	if err := setXattr(p, "user.kiln", "v1"); err != nil {
		t.Skipf("no user xattrs here: %v", err)
	}
	if err := Copy(context.Background(), src, dst, Options{Sources: []string{"a.txt"}, Dest: "/a"}); err != nil {
		t.Fatal(err)
	}
	v, err := xattr.Get(filepath.Join(dst, "a"), "user.kiln")
	if err != nil || string(v) != "v1" {
		t.Fatalf("xattr = %q, %v; want v1", v, err)
	}
}

func TestCopyCancelled(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	build(t, src, srcFixture)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Copy(ctx, src, dst, Options{Sources: []string{"dir"}, Dest: "/o"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
}
