package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/store"
)

// snapshotOf is the snapshot dir of layer i of the image ref.
func (e *env) snapshotOf(ref string, i int) string {
	e.t.Helper()
	s, err := store.Open(e.root)
	if err != nil {
		e.t.Fatal(err)
	}
	cfg := configOf(e.t, e.image(ref))
	if i >= len(cfg.RootFS.DiffIDs) {
		e.t.Fatalf("%s has %d layers", ref, len(cfg.RootFS.DiffIDs))
	}
	return s.Layers().SnapshotDir(digest.Digest(cfg.RootFS.DiffIDs[i].String()))
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// A COPY of the context that re-runs because one file changed links the
// unchanged files from its last snapshot instead of copying them, and the
// image is exactly what a full copy gives: new data, new times, same rest.
func TestCopyReusesUnchangedFiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := e.context(map[string]string{
		"Dockerfile": "ARG BASE\nFROM $BASE\nWORKDIR /ctx\nCOPY . /ctx\nRUN cat /ctx/a /ctx/sub/b > /sum\n",
		"a":          "first\n",
		"sub/b":      "bee\n",
		"big":        strings.Repeat("kiln ", 20000),
	})
	// Old enough that the stat cache trusts its sums.
	old := time.Now().Add(-time.Hour)
	for _, p := range []string{"a", "sub/b", "big", "Dockerfile"} {
		if err := os.Chtimes(filepath.Join(dir, p), old, old); err != nil {
			t.Fatal(err)
		}
	}
	// The same target and tag: the next build finds this one's steps.
	build := func() {
		e.mustKiln("build", "--progress=plain", "-t", "r", "--build-arg", "BASE="+e.base, dir)
	}
	build()
	e.mustKiln("tag", "r", "r:1")
	s1 := e.snapshotOf("r:1", 2)
	// a: new data; sub/b: same data, new mtime.
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("second\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	touched := time.Date(2021, 6, 7, 8, 9, 10, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(dir, "sub/b"), touched, touched); err != nil {
		t.Fatal(err)
	}
	build()
	e.mustKiln("tag", "r", "r:2")

	fs := files(t, e.image("r:2"))
	if fs["/ctx/a"].data != "second\n" || fs["/sum"].data != "second\nbee\n" {
		t.Errorf("/ctx/a = %q, /sum = %q", fs["/ctx/a"].data, fs["/sum"].data)
	}
	if got := fs["/ctx/sub/b"].hdr.ModTime; !got.Equal(touched) {
		t.Errorf("/ctx/sub/b mtime %v, want %v", got, touched)
	}
	if fs["/ctx/big"].data != strings.Repeat("kiln ", 20000) {
		t.Error("/ctx/big changed")
	}
	// Layers: base, WORKDIR, COPY, RUN.
	s2 := e.snapshotOf("r:2", 2)
	if s1 == s2 {
		t.Fatal("the COPY layer did not change")
	}
	for _, tc := range []struct {
		path   string
		shared bool
	}{{"ctx/big", true}, {"ctx/Dockerfile", true}, {"ctx/a", false}, {"ctx/sub/b", false}} {
		if got := inode(t, filepath.Join(s1, tc.path)) == inode(t, filepath.Join(s2, tc.path)); got != tc.shared {
			t.Errorf("%s shared with the last snapshot = %v, want %v", tc.path, got, tc.shared)
		}
	}
	// The shared layer exports and checks like any other.
	out := filepath.Join(t.TempDir(), "r.tar")
	e.mustKiln("save", "-o", out, "r:2")
	if r := e.mustKiln("store", "check"); !strings.Contains(r.stdout, "store is consistent") {
		t.Errorf("store check:\n%s", r.stdout)
	}
	e2 := newEnv(t)
	e2.mustKiln("load", "-i", out)
	if r := e2.mustKiln("run", "--rm", "r:2", "cat", "/sum"); r.stdout != "second\nbee\n" {
		t.Errorf("loaded image: %q", r.stdout)
	}
	// GC of the first image leaves the second whole.
	e.mustKiln("rmi", "r:1")
	e.mustKiln("rmi", "r")
	e.mustKiln("prune", "--all", "-f")
	if r := e.mustKiln("run", "--rm", "r:2", "cat", "/ctx/big"); r.stdout != strings.Repeat("kiln ", 20000) {
		t.Error("/ctx/big lost after GC of the image that first had it")
	}
}
