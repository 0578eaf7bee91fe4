//go:build linux

package solver

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/solver/dag"
	"github.com/kiln-build/kiln/store"
)

// copyVertex is `COPY <sources> /dst/` from a context at dir.
func copyVertex(dir string, excludes []string, sources ...string) *dag.Vertex {
	return &dag.Vertex{
		Op: &dag.CopyOp{Sources: sources, Dest: "/dst/"},
		Inputs: []*dag.Vertex{
			{Op: &dag.ScratchOp{}},
			{Op: &dag.LocalOp{Name: "context", Dir: dir, Excludes: excludes}},
		},
	}
}

func newTestSolver(t *testing.T) *Solver {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return New(st, Options{})
}

func writeTree(t *testing.T, dir string) {
	t.Helper()
	for p, c := range map[string]string{"a": "alpha", "sub/b": "beta", "sub/c": "gamma", "ignored": "x"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
}

// Every field of a selected file is in the key; mtime and unselected
// files are not.
func TestContentKeySensitivity(t *testing.T) {
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-time.Hour)
	tests := []struct {
		name   string
		change func(t *testing.T, dir string)
		busts  bool
		root   bool
	}{
		{"nothing", func(t *testing.T, dir string) {}, false, false},
		{"mtime", func(t *testing.T, dir string) { must(t, os.Chtimes(filepath.Join(dir, "a"), old, old)) }, false, false},
		{"excluded file", func(t *testing.T, dir string) {
			must(t, os.WriteFile(filepath.Join(dir, "ignored"), []byte("y"), 0o644))
		}, false, false},
		{"data, same size", func(t *testing.T, dir string) {
			must(t, os.WriteFile(filepath.Join(dir, "sub/b"), []byte("BETA"), 0o644))
		}, true, false},
		{"path", func(t *testing.T, dir string) {
			must(t, os.Rename(filepath.Join(dir, "sub/c"), filepath.Join(dir, "sub/d")))
		}, true, false},
		{"added file", func(t *testing.T, dir string) { must(t, os.WriteFile(filepath.Join(dir, "sub/new"), nil, 0o644)) }, true, false},
		{"added empty dir", func(t *testing.T, dir string) { must(t, os.Mkdir(filepath.Join(dir, "empty"), 0o755)) }, true, false},
		{"removed file", func(t *testing.T, dir string) { must(t, os.Remove(filepath.Join(dir, "sub/c"))) }, true, false},
		{"mode", func(t *testing.T, dir string) { must(t, os.Chmod(filepath.Join(dir, "a"), 0o755)) }, true, false},
		{"dir mode", func(t *testing.T, dir string) { must(t, os.Chmod(filepath.Join(dir, "sub"), 0o700)) }, true, false},
		{"setuid bit", func(t *testing.T, dir string) { must(t, os.Chmod(filepath.Join(dir, "a"), 0o644|os.ModeSetuid)) }, true, false},
		{"type: file → dir", func(t *testing.T, dir string) {
			must(t, os.Remove(filepath.Join(dir, "sub/c")))
			must(t, os.Mkdir(filepath.Join(dir, "sub/c"), 0o644))
		}, true, false},
		{"link target", func(t *testing.T, dir string) {
			must(t, os.Remove(filepath.Join(dir, "link")))
			must(t, os.Symlink("sub/b", filepath.Join(dir, "link")))
		}, true, false},
		// COPY gives context files 0:0 whoever owns the checkout: another
		// CI machine's owner must not miss the cache.
		{"uid", func(t *testing.T, dir string) { must(t, os.Lchown(filepath.Join(dir, "a"), 1000, 0)) }, false, true},
		{"gid", func(t *testing.T, dir string) { must(t, os.Lchown(filepath.Join(dir, "sub/b"), 0, 1000)) }, false, true},
		{"xattr", func(t *testing.T, dir string) {
			if err := unix.Lsetxattr(filepath.Join(dir, "a"), "user.kiln", []byte("1"), 0); err != nil {
				t.Skipf("no user xattrs here: %v", err)
			}
		}, true, false},
	}
	dirs := make([]string, len(tests))
	for i := range tests {
		dirs[i] = t.TempDir()
		writeTree(t, dirs[i])
	}
	// Past the racy window, so that the next build trusts the stat cache
	// for what did not change: that path must see every change too.
	time.Sleep(2100 * time.Millisecond)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && os.Geteuid() != 0 {
				t.Skip("needs root: chown")
			}
			dir := dirs[i]
			s := newTestSolver(t)
			v := copyVertex(dir, []string{"ignored"}, ".")
			before, err := s.localContent(t.Context(), v, nil)
			must(t, err)
			plain, err := HashSelection(t.Context(), dir, copyOptions(v.Op.(*dag.CopyOp), v.Inputs[1].Op.(*dag.LocalOp)))
			must(t, err)
			tc.change(t, dir)
			// A fresh solver (a new build) with the stat cache the first one
			// saved, as the next `kiln build` would have.
			must(t, s.stat.Save())
			after, err := NewWith(s.store, s.executor, Options{}).localContent(t.Context(), v, nil)
			must(t, err)
			if busted := before != after; busted != tc.busts {
				t.Errorf("key changed = %v, want %v", busted, tc.busts)
			}
			plainAfter, err := HashSelection(t.Context(), dir, copyOptions(v.Op.(*dag.CopyOp), v.Inputs[1].Op.(*dag.LocalOp)))
			must(t, err)
			if busted := plain != plainAfter; busted != tc.busts {
				t.Errorf("without stat cache: key changed = %v, want %v", busted, tc.busts)
			}
		})
	}
}

// The racy case: a file rewritten with the same size and then given back
// its old mtime must be re-hashed, by any later build, however the stat
// cache was left.
func TestContentKeySameSizeAndMtime(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	stamp := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v := copyVertex(dir, nil, "f")
	var prev digest.Digest
	for i, content := range []string{"version-1", "version-2", "version-3", "version-3"} {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, stamp, stamp); err != nil {
			t.Fatal(err)
		}
		s := New(st, Options{})
		got, err := s.localContent(t.Context(), v, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.stat.Save(); err != nil {
			t.Fatal(err)
		}
		want, err := HashSelection(t.Context(), dir, copyOptions(v.Op.(*dag.CopyOp), v.Inputs[1].Op.(*dag.LocalOp)))
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("round %d (%s): stat cache gave a stale key", i, content)
		}
		if i > 0 && (got == prev) != (content == "version-3" && i == 3) {
			t.Fatalf("round %d: key changed = %v", i, got != prev)
		}
		prev = got
	}
}

// A RUN bind mount of the context keys on the files under its source.
func TestBindMountOfContextIsKeyed(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir)
	s := newTestSolver(t)
	v := &dag.Vertex{
		Op: &dag.ExecOp{Args: []string{"true"}, Mounts: []dag.Mount{{Type: "bind", Target: "/src", Input: 1, Source: "sub", ReadOnly: true}}},
		Inputs: []*dag.Vertex{
			{Op: &dag.ScratchOp{}},
			{Op: &dag.LocalOp{Name: "context", Dir: dir}},
		},
	}
	key := func() digest.Digest {
		t.Helper()
		d, err := s.localContent(t.Context(), v, nil)
		if err != nil || d == "" {
			t.Fatalf("content %q, %v", d, err)
		}
		return d
	}
	k0 := key()
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("outside the mount"), 0o644); err != nil {
		t.Fatal(err)
	}
	if key() != k0 {
		t.Error("a file outside the mounted source changed the key")
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "b"), []byte("inside"), 0o644); err != nil {
		t.Fatal(err)
	}
	k1 := key()
	if k1 == k0 {
		t.Error("a file inside the mounted source did not change the key")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: chown")
	}
	// A bind mount shows the owners, unlike a COPY.
	if err := os.Lchown(filepath.Join(dir, "sub", "b"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if key() == k1 {
		t.Error("the owner of a file inside the mounted source did not change the key")
	}
}

// BenchmarkContextKey is the context check of `COPY . .` over a 30,000-file,
// 300 MB context: cold (every byte read) and warm (what the next build
// pays: load the stat cache, walk, stat; nothing read).
func BenchmarkContextKey(b *testing.B) {
	dir := b.TempDir()
	small := make([]byte, 1<<10)
	for i := range 29990 {
		sub := filepath.Join(dir, "src", fmt.Sprintf("d%03d", i%300))
		if i < 300 {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		small[0], small[1] = byte(i), byte(i>>8)
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%d.go", i)), small, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	big := make([]byte, 27<<20)
	for i := range 10 {
		big[0] = byte(i)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("blob%d.bin", i)), big, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(2100 * time.Millisecond) // out of the racy window
	st, err := store.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	v := copyVertex(dir, nil, ".")
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			if _, err := HashSelection(b.Context(), dir, copyOptions(v.Op.(*dag.CopyOp), v.Inputs[1].Op.(*dag.LocalOp))); err != nil {
				b.Fatal(err)
			}
		}
	})
	first := New(st, Options{})
	if _, err := first.localContent(b.Context(), v, nil); err != nil {
		b.Fatal(err)
	}
	if err := first.stat.Save(); err != nil {
		b.Fatal(err)
	}
	b.Run("warm", func(b *testing.B) {
		for b.Loop() {
			s := New(st, Options{})
			if _, err := s.localContent(b.Context(), v, nil); err != nil {
				b.Fatal(err)
			}
			if err := s.stat.Save(); err != nil { // a no-op unless something changed
				b.Fatal(err)
			}
		}
	})
}
