//go:build linux

package fscopy

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/xattr"
)

// fullTree describes everything a layer tar would record of each entry
// under root (type, mode, owner, size, mtime, data, xattrs), and which
// entries share an inode inside root.
func fullTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	inodes := map[uint64][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		st := statOf(t, p)
		desc := fmt.Sprintf("%o %d:%d %d %d.%09d", st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + string(b)
			inodes[st.Ino] = append(inodes[st.Ino], rel)
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		}
		if v, err := xattr.Get(p, "user.kiln"); err == nil {
			desc += " x=" + string(v)
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, paths := range inodes {
		if len(paths) > 1 {
			sort.Strings(paths)
			out["links "+paths[0]] = strings.Join(paths, " ")
		}
	}
	return out
}

func sameInode(t *testing.T, a, b string) bool {
	t.Helper()
	return statOf(t, a).Ino == statOf(t, b).Ino
}

// A copy that reuses an earlier snapshot writes exactly what a plain copy
// writes; it links only the files whose data the caller vouches for and
// whose old copy has the metadata the new one would get.
func TestCopyReuse(t *testing.T) {
	needRoot(t, "copies keep owners")
	ctx := context.Background()
	src := t.TempDir()
	build(t, src, srcFixture)
	if err := setXattr(filepath.Join(src, "dir/keep.txt"), "user.kiln", "kept"); err != nil {
		t.Skipf("no user xattrs here: %v", err)
	}
	opts := Options{Sources: []string{"."}, Dest: "/app/", ContextOwner: true}
	snap := t.TempDir()
	if err := Copy(ctx, src, snap, opts); err != nil {
		t.Fatal(err)
	}

	// Then: a.txt gets new data, c.md only a new mtime, b.txt a new mode.
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("A.TXT"), 0o644); err != nil {
		t.Fatal(err)
	}
	later := fixedTime.Add(time.Hour)
	if err := os.Chtimes(filepath.Join(src, "c.md"), later, later); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "b.txt"), 0o640); err != nil {
		t.Fatal(err)
	}
	// What the solver would vouch for: same type, mode, owner, size, data.
	same := map[string]bool{"c.md": true, "dir/x.go": true, "dir/y.log": true, "dir/keep.txt": true,
		"dir/sub/z": true, "dir/h1": true, "dir/h2": true, "etc/passwd": true, "we[ird].txt": true}

	plain, reused := t.TempDir(), t.TempDir()
	if err := Copy(ctx, src, plain, opts); err != nil {
		t.Fatal(err)
	}
	o := opts
	o.Reuse = &Reuse{Snapshot: snap, Upper: reused, Files: same}
	if err := Copy(ctx, src, reused, o); err != nil {
		t.Fatal(err)
	}
	diffTrees(t, fullTree(t, reused), fullTree(t, plain))

	for _, tc := range []struct {
		path string
		link bool
	}{
		{"dir/x.go", true}, {"dir/sub/z", true}, {"etc/passwd", true}, {"dir/keep.txt", true},
		{"a.txt", false},    // data changed: not vouched for
		{"b.txt", false},    // mode changed
		{"c.md", false},     // vouched for, but the old copy has the old mtime
		{"dir/h1", false},   // hard links are copied, to keep their structure
		{"link.txt", false}, // symlinks are made anew
	} {
		got := sameInode(t, filepath.Join(snap, "app", tc.path), filepath.Join(reused, "app", tc.path))
		if got != tc.link {
			t.Errorf("%s linked to the old snapshot = %v, want %v", tc.path, got, tc.link)
		}
	}
}

// Neither tree's symlinks can make the copy link a file from elsewhere.
func TestCopyReuseNeverFollowsLinks(t *testing.T) {
	needRoot(t, "copies keep owners")
	ctx := context.Background()
	src := t.TempDir()
	build(t, src, []ent{{"d", "d", 0o755, ""}, {"f", "d/f", 0o644, "secret"}})
	// The old snapshot's d is a symlink to a dir outside holding a file
	// with the very metadata d/f would get.
	outside := t.TempDir()
	build(t, outside, []ent{{"f", "app/d/f", 0o644, "secret"}})
	snap := t.TempDir()
	if err := os.MkdirAll(filepath.Join(snap, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "app/d"), filepath.Join(snap, "app/d")); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	o := Options{Sources: []string{"."}, Dest: "/app/", ContextOwner: true,
		Reuse: &Reuse{Snapshot: snap, Upper: dst, Files: map[string]bool{"d/f": true}}}
	if err := Copy(ctx, src, dst, o); err != nil {
		t.Fatal(err)
	}
	if sameInode(t, filepath.Join(outside, "app/d/f"), filepath.Join(dst, "app/d/f")) {
		t.Error("the copy linked a file through a symlink in the old snapshot")
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "app/d/f")); string(b) != "secret" {
		t.Errorf("d/f = %q", b)
	}
	if st := statOf(t, filepath.Join(outside, "app/d/f")); st.Nlink != 1 {
		t.Errorf("outside file has %d links", st.Nlink)
	}
}
