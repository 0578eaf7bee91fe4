//go:build linux

package fscopy

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"syscall"
	"testing"
)

// contentSets returns the contents of the regular files and the targets
// of the symlinks under root (or, with rels, of those paths only).
func contentSets(t *testing.T, root string, rels []string) (files, links map[string]bool) {
	t.Helper()
	files, links = map[string]bool{}, map[string]bool{}
	add := func(p string) {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			files[string(b)] = true
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			links[target] = true
		}
	}
	if rels != nil {
		for _, r := range rels {
			add(filepath.Join(root, r))
		}
		return files, links
	}
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != root {
			add(p)
		}
		return err
	})
	return files, links
}

func TestWalkSelectsWhatCopyCopies(t *testing.T) {
	needRoot(t, "created parent dirs are chowned to 0:0")
	tests := []Options{
		{Sources: []string{"dir"}, Dest: "/o"},
		{Sources: []string{"."}, Dest: "/"},
		{Sources: []string{"*.txt", "nomatch*", "dir/sub"}, Dest: "/o/"},
		{Sources: []string{"d*"}, Dest: "/o/"},
		{Sources: []string{"linkdir", "link.txt"}, Dest: "/o/"},
		{Sources: []string{"../esc/passwd"}, Dest: "/p"},
		{Sources: []string{"."}, Dest: "/o/", Excludes: []string{"dir", "!dir/keep.txt", "*.md"}},
		{Sources: []string{"dir", "a.txt"}, Dest: "/o/", Excludes: []string{"**/*.log", "dir/sub"}},
	}
	for _, o := range tests {
		t.Run(o.Sources[0]+"->"+o.Dest, func(t *testing.T) {
			src, dst := t.TempDir(), t.TempDir()
			build(t, src, srcFixture)
			var rels []string
			var dirs int
			err := Walk(context.Background(), src, o, func(rel string, fi os.FileInfo) error {
				if fi.IsDir() {
					dirs++
				}
				if !fi.Mode().IsRegular() && !fi.IsDir() && fi.Mode()&os.ModeSymlink == 0 {
					t.Errorf("unexpected type for %s", rel)
				}
				if want, err := os.Lstat(filepath.Join(src, rel)); err != nil || !sameInfo(want, fi) {
					t.Errorf("%s: FileInfo is not Lstat's (%v)", rel, err)
				}
				rels = append(rels, rel)
				return nil
			})
			if err != nil {
				t.Fatalf("Walk: %v", err)
			}
			if err := Copy(context.Background(), src, dst, o); err != nil {
				t.Fatalf("Copy: %v", err)
			}
			wf, wl := contentSets(t, src, rels)
			cf, cl := contentSets(t, dst, nil)
			if !reflect.DeepEqual(wf, cf) {
				t.Errorf("files walked %v, copied %v", keys(wf), keys(cf))
			}
			for l := range cl {
				if !wl[l] {
					t.Errorf("copied symlink -> %s that Walk did not report", l)
				}
			}
			if dirs == 0 && o.Sources[0] == "dir" {
				t.Error("Walk reported no directories")
			}
		})
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestWalkOrderAndLinks(t *testing.T) {
	src := t.TempDir()
	build(t, src, srcFixture)
	var got []string
	err := Walk(context.Background(), src, Options{Sources: []string{"linkdir", "dir/sub", "*.md"}, Excludes: []string{"c.md"}},
		func(rel string, fi os.FileInfo) error {
			got = append(got, rel)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	// The followed link is reported as itself and as its target.
	want := []string{"linkdir", "dir/sub", "dir/sub/z", "dir/sub", "dir/sub/z"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Walk order = %v, want %v", got, want)
	}
	stop := errors.New("stop")
	if err := Walk(context.Background(), src, Options{Sources: []string{"dir"}}, func(string, os.FileInfo) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("Walk did not return fn's error: %v", err)
	}
}

const passwd = "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n"
const group = "root:x:0:\nappgrp:x:1001:\nstaff:x:50:app\n"

func TestCopyOwner(t *testing.T) {
	needRoot(t, "chown")
	tests := []struct {
		name       string
		chown      string
		context    bool
		uid, gid   uint32 // of copied files
		puid, pgid uint32 // of created parents
		wantErr    bool
	}{
		{name: "keep source owner", uid: 1111, gid: 2222},
		{name: "context owner is root", context: true, uid: 0, gid: 0},
		{name: "chown name", chown: "app", context: true, uid: 1000, gid: 1001, puid: 1000, pgid: 1001},
		{name: "chown name:group", chown: "app:staff", uid: 1000, gid: 50, puid: 1000, pgid: 50},
		{name: "chown number", chown: "1234", uid: 1234, gid: 1234, puid: 1234, pgid: 1234},
		{name: "chown numbers", chown: "5:6", uid: 5, gid: 6, puid: 5, pgid: 6},
		{name: "chown unknown name is root, as BuildKit", chown: "ghost", context: true, uid: 0, gid: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := t.TempDir(), t.TempDir()
			build(t, src, srcFixture)
			build(t, dst, []ent{{"f", "etc/passwd", 0o644, passwd}, {"f", "etc/group", 0o644, group}, {"d", "keep", 0o755, ""}})
			if err := filepath.WalkDir(filepath.Join(src, "dir"), func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				return os.Lchown(p, 1111, 2222)
			}); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(src, "dir/sub/z"), 0o755|os.ModeSetuid); err != nil { // chown cleared it
				t.Fatal(err)
			}
			err := Copy(context.Background(), src, dst, Options{Sources: []string{"dir"}, Dest: "/keep/p/q/", Chown: tc.chown, ContextOwner: tc.context})
			if tc.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// q receives dir's contents: it is made like a parent (fsutil#47).
			if st := statOf(t, filepath.Join(dst, "keep/p/q")); st.Uid != tc.puid || st.Gid != tc.pgid || st.Mode&0o7777 != 0o755 {
				t.Errorf("contents' dest: %d:%d %o, want %d:%d 0755", st.Uid, st.Gid, st.Mode&0o7777, tc.puid, tc.pgid)
			}
			for _, rel := range []string{"keep/p/q/x.go", "keep/p/q/sub", "keep/p/q/lnk", "keep/p/q/sub/z"} {
				st := statOf(t, filepath.Join(dst, rel))
				if st.Uid != tc.uid || st.Gid != tc.gid {
					t.Errorf("%s owned %d:%d, want %d:%d", rel, st.Uid, st.Gid, tc.uid, tc.gid)
				}
			}
			if st := statOf(t, filepath.Join(dst, "keep/p")); st.Uid != tc.puid || st.Gid != tc.pgid || st.Mode&0o7777 != 0o755 {
				t.Errorf("created parent: %d:%d %o, want %d:%d 0755", st.Uid, st.Gid, st.Mode&0o7777, tc.puid, tc.pgid)
			}
			if st := statOf(t, filepath.Join(dst, "keep")); st.Uid != 0 || st.Gid != 0 {
				t.Errorf("existing dir re-owned to %d:%d", st.Uid, st.Gid)
			}
			// chown must not strip setuid (chmod comes after it).
			if st := statOf(t, filepath.Join(dst, "keep/p/q/sub/z")); st.Mode&0o4000 == 0 {
				t.Errorf("setuid lost: %o", st.Mode)
			}
		})
	}
}

func TestMkdir(t *testing.T) {
	needRoot(t, "chown")
	root := t.TempDir()
	build(t, root, []ent{
		{"f", "etc/passwd", 0o644, passwd}, {"f", "etc/group", 0o644, group},
		{"d", "old", 0o711, ""}, {"f", "file", 0o644, ""}, {"l", "esc", 0, "../../../.."},
	})
	if err := os.Lchown(filepath.Join(root, "old"), 5, 5); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		path     string
		chown    string
		mode     os.FileMode
		check    []string // created dirs to check
		uid, gid uint32
		perm     uint32
		wantErr  bool
	}{
		{name: "parents and owner", path: "/a/b/c", chown: "app", mode: 0o750, check: []string{"a", "a/b", "a/b/c"}, uid: 1000, gid: 1001, perm: 0o750},
		{name: "default owner root", path: "/d/e", mode: 0o755, check: []string{"d", "d/e"}, perm: 0o755},
		{name: "under existing dir", path: "/old/n", chown: "7:8", mode: 0o700, check: []string{"old/n"}, uid: 7, gid: 8, perm: 0o700},
		{name: "symlink stays in root", path: "/esc/inside", mode: 0o755, check: []string{"inside"}, perm: 0o755},
		{name: "setgid mode", path: "/sg", mode: 0o755 | os.ModeSetgid, check: []string{"sg"}, perm: 0o2755},
		{name: "existing file", path: "/file/x", mode: 0o755, wantErr: true},
		{name: "unknown user is root, as BuildKit", path: "/u", chown: "ghost", mode: 0o755, check: []string{"u"}, perm: 0o755},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Mkdir(context.Background(), root, tc.path, tc.chown, tc.mode)
			if tc.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, rel := range tc.check {
				st := statOf(t, filepath.Join(root, rel))
				if st.Mode&syscall.S_IFMT != syscall.S_IFDIR || st.Mode&0o7777 != tc.perm || st.Uid != tc.uid || st.Gid != tc.gid {
					t.Errorf("%s: mode %o owner %d:%d, want dir %o %d:%d", rel, st.Mode, st.Uid, st.Gid, tc.perm, tc.uid, tc.gid)
				}
			}
		})
	}
	// An existing directory is left exactly as it was.
	before := *statOf(t, filepath.Join(root, "old/n"))
	if err := Mkdir(context.Background(), root, "/old/n", "app", 0o777); err != nil {
		t.Fatal(err)
	}
	if after := *statOf(t, filepath.Join(root, "old/n")); after != before {
		t.Errorf("existing dir changed: %+v -> %+v", before, after)
	}
	if st := statOf(t, filepath.Join(root, "old")); st.Uid != 5 || st.Mode&0o7777 != 0o711 {
		t.Errorf("existing parent changed: %d %o", st.Uid, st.Mode)
	}
}

// sameInfo reports whether fi says all that os.Lstat's want says.
func sameInfo(want, fi os.FileInfo) bool {
	ws, gs := want.Sys().(*syscall.Stat_t), fi.Sys().(*syscall.Stat_t)
	return ws.Dev == gs.Dev && ws.Ino == gs.Ino && ws.Mode == gs.Mode && ws.Uid == gs.Uid && ws.Gid == gs.Gid &&
		ws.Nlink == gs.Nlink && ws.Ctim == gs.Ctim &&
		want.Name() == fi.Name() && want.Size() == fi.Size() && want.Mode() == fi.Mode() &&
		want.ModTime().Equal(fi.ModTime()) && want.IsDir() == fi.IsDir()
}
