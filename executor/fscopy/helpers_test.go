//go:build linux

package fscopy

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fixedTime is the mtime of every fixture entry, so tests can see it kept.
var fixedTime = time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC)

// ent describes one fixture entry: "f" file (content = its path unless
// data is set), "d" dir, "l" symlink to data, "h" hardlink to data.
type ent struct {
	kind string
	path string
	mode uint32
	data string
}

// srcFixture is the default source tree.
var srcFixture = []ent{
	{"f", "a.txt", 0o644, ""},
	{"f", "b.txt", 0o600, ""},
	{"f", "c.md", 0o644, ""},
	{"d", "dir", 0o750, ""},
	{"f", "dir/x.go", 0o755, ""},
	{"f", "dir/y.log", 0o644, ""},
	{"f", "dir/keep.txt", 0o644, ""},
	{"d", "dir/sub", 0o755, ""},
	{"f", "dir/sub/z", 0o4755, ""},
	{"d", "dir/sticky", 0o1777, ""},
	{"l", "dir/lnk", 0, "x.go"},
	{"f", "dir/h1", 0o640, ""},
	{"h", "dir/h2", 0, "dir/h1"},
	{"d", "etc", 0o755, ""},
	{"f", "etc/passwd", 0o644, ""},
	{"l", "link.txt", 0, "a.txt"},
	{"l", "linkdir", 0, "dir/sub"},
	{"l", "dangling", 0, "nowhere"},
	{"l", "esc", 0, "/etc"},
	{"l", "esc2", 0, "../../../../../../etc"},
	{"f", "we[ird].txt", 0o644, ""},
}

func build(t testing.TB, root string, ents []ent) {
	t.Helper()
	for _, e := range ents {
		p := filepath.Join(root, e.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch e.kind {
		case "f":
			data := e.data
			if data == "" {
				data = e.path
			}
			err = os.WriteFile(p, []byte(data), 0o600)
		case "d":
			err = os.MkdirAll(p, 0o755)
		case "l":
			err = os.Symlink(e.data, p)
		case "h":
			err = os.Link(filepath.Join(root, e.data), p)
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.kind == "f" || e.kind == "d" {
			if err := unix.Chmod(p, e.mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Times last, deepest first, as filling a dir changes its mtime.
	var paths []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	})
	ts := []unix.Timespec{unix.NsecToTimespec(fixedTime.UnixNano()), unix.NsecToTimespec(fixedTime.UnixNano())}
	for i := len(paths) - 1; i >= 0; i-- {
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, paths[i], ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}
}

// tree describes every entry under root: "f 0644 content", "d 0755",
// "l target".
func tree(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		mode := fi.Sys().(*syscall.Stat_t).Mode & 0o7777
		switch {
		case fi.IsDir():
			out[rel] = "d " + octal(mode)
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[rel] = "l " + target
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = "f " + octal(mode) + " " + string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func octal(m uint32) string {
	return fmt.Sprintf("%04o", m)
}

func diffTrees(t *testing.T, got, want map[string]string) {
	t.Helper()
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if got[k] != want[k] {
			t.Errorf("%s: got %q, want %q", k, got[k], want[k])
		}
	}
}

func statOf(t testing.TB, p string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

func needRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: " + why)
	}
}

func setXattr(p, name, val string) error { return unix.Lsetxattr(p, name, []byte(val), 0) }
