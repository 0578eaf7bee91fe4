//go:build linux

package store

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/layer"
)

// TestLayers is the conformance suite of Layers: a layer is its snapshot,
// moved or copied in or unpacked from a blob, and its record; its tar
// comes back verified.
func TestLayers(t *testing.T) {
	t.Run("move in", func(t *testing.T) {
		ctx := t.Context()
		s := openTemp(t)
		ls := s.Layers()
		l := commitFiles(t, s, map[string]string{"f": "data"})
		if !l.FromSnapshot() {
			t.Errorf("a moved-in layer %+v has a blob of its own", l)
		}
		if b, err := os.ReadFile(filepath.Join(ls.SnapshotDir(l.DiffID), "f")); err != nil || string(b) != "data" {
			t.Errorf("snapshot's f: %q, %v", b, err)
		}
		if got, err := ls.Get(ctx, l.DiffID); err != nil || got != l {
			t.Errorf("Get = %+v, %v", got, err)
		}
		if dirs := ls.SnapshotDirs([]Layer{l, l}); len(dirs) != 2 || dirs[1] != ls.SnapshotDir(l.DiffID) {
			t.Errorf("SnapshotDirs = %v", dirs)
		}
		// The same tree again is the same layer; the second dir goes.
		dir, err := s.Temp().Dir("again-")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o644); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(filepath.Join(ls.SnapshotDir(l.DiffID), "f"))
		if err := os.Chtimes(filepath.Join(dir, "f"), fi.ModTime(), fi.ModTime()); err != nil {
			t.Fatal(err)
		}
		dfi, _ := os.Stat(ls.SnapshotDir(l.DiffID))
		if err := os.Chtimes(dir, dfi.ModTime(), dfi.ModTime()); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, dfi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
		again, err := ls.MoveIn(ctx, dir)
		if err != nil || again != l {
			t.Errorf("MoveIn of the same tree = %+v, %v; want %+v", again, err, l)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("the moved dir is still there: %v", err)
		}
	})

	t.Run("get needs record and snapshot", func(t *testing.T) {
		ctx := t.Context()
		s := openTemp(t)
		ls := s.Layers()
		if _, err := ls.Get(ctx, digest.FromBytes([]byte("none"))); !IsNotFound(err) {
			t.Errorf("Get of no layer: %v", err)
		}
		l := commitFiles(t, s, map[string]string{"f": "data"})
		if err := os.RemoveAll(ls.SnapshotDir(l.DiffID)); err != nil {
			t.Fatal(err)
		}
		if _, err := ls.Get(ctx, l.DiffID); !IsNotFound(err) {
			t.Errorf("Get without the snapshot: %v", err)
		}
		if _, err := ls.Get(ctx, "sha256:../x"); err == nil {
			t.Error("a malformed diffID was accepted")
		}
	})

	t.Run("copy in", func(t *testing.T) {
		ctx := t.Context()
		s := openTemp(t)
		src := t.TempDir()
		if err := os.WriteFile(filepath.Join(src, "f"), []byte("kept"), 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := s.Layers().CopyIn(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(src, "f")); err != nil || string(b) != "kept" {
			t.Errorf("the copied dir changed: %q, %v", b, err)
		}
		if b, err := os.ReadFile(filepath.Join(s.Layers().SnapshotDir(l.DiffID), "f")); err != nil || string(b) != "kept" {
			t.Errorf("the copy: %q, %v", b, err)
		}
	})

	t.Run("tar, gzip and import", func(t *testing.T) {
		ctx := t.Context()
		s := openTemp(t)
		ls := s.Layers()
		l := commitFiles(t, s, map[string]string{"f": strings.Repeat("kiln ", 500)})
		rc, err := ls.OpenTar(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		tarball, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || digest.FromBytes(tarball) != l.DiffID {
			t.Fatalf("OpenTar: %d bytes hashing to %s (%v), want %s", len(tarball), digest.FromBytes(tarball), err, l.DiffID)
		}
		gz, err := ls.Gzip(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		if again, err := ls.Gzip(ctx, l); err != nil || again != gz {
			t.Errorf("second Gzip = %+v, %v; want %+v", again, err, gz)
		}
		var want bytes.Buffer
		if _, _, err := layer.Compress(ctx, &want, bytes.NewReader(tarball)); err != nil {
			t.Fatal(err)
		}
		if digest.FromBytes(want.Bytes()) != gz.Digest {
			t.Errorf("Gzip made %s, layer.Compress makes %s", gz.Digest, digest.FromBytes(want.Bytes()))
		}

		requireRoot(t)
		other := openTemp(t)
		if _, err := other.Layers().Import(ctx, bytes.NewReader(want.Bytes()), gz.Digest, digest.FromBytes([]byte("wrong")), MediaTypeLayerGzip); err == nil {
			t.Error("Import with the wrong diffID succeeded")
		}
		if _, err := other.Layers().Import(ctx, bytes.NewReader(want.Bytes()), digest.FromBytes([]byte("wrong")), l.DiffID, MediaTypeLayerGzip); err == nil {
			t.Error("Import with the wrong blob digest succeeded")
		}
		got, err := other.Layers().Import(ctx, bytes.NewReader(want.Bytes()), gz.Digest, l.DiffID, "application/vnd.docker.image.rootfs.diff.tar.gzip")
		if err != nil {
			t.Fatal(err)
		}
		if got.DiffID != l.DiffID || got.Digest != gz.Digest || got.MediaType != MediaTypeLayerGzip || got.FromSnapshot() {
			t.Errorf("imported %+v", got)
		}
		if b, err := os.ReadFile(filepath.Join(other.Layers().SnapshotDir(l.DiffID), "f")); err != nil || len(b) != 2500 {
			t.Errorf("imported snapshot's f: %d bytes, %v", len(b), err)
		}
		rc, err = other.Layers().OpenTar(ctx, got)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || digest.FromBytes(b) != l.DiffID {
			t.Errorf("the imported layer's tar: %v", err)
		}
	})

	t.Run("a changed snapshot's tar fails", func(t *testing.T) {
		ctx := t.Context()
		s := openTemp(t)
		l := commitFiles(t, s, map[string]string{"f": "original"})
		if err := os.WriteFile(filepath.Join(s.Layers().SnapshotDir(l.DiffID), "f"), []byte("changed!"), 0o644); err != nil {
			t.Fatal(err)
		}
		rc, err := s.Layers().OpenTar(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if _, err := io.Copy(io.Discard, rc); err == nil || !strings.Contains(err.Error(), "damaged") {
			t.Errorf("reading a changed snapshot: %v", err)
		}
	})
}

// A snapshot's size, worked out while moving it in, is what a du walk of
// it finds (hard links once), so GC need not walk it again.
func TestMoveInKnowsSnapshotSize(t *testing.T) {
	s := openTemp(t)
	dir, err := s.Temp().Dir("test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i, n := range []int{0, 1, 5000, 200000} {
		if err := os.WriteFile(filepath.Join(dir, "sub", strconv.Itoa(i)), make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(dir, "sub", "3"), filepath.Join(dir, "again")); err != nil {
		t.Fatal(err)
	}
	l, err := s.Layers().MoveIn(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := newDUWalker().size(s.Layers().SnapshotDir(l.DiffID))
	if err != nil {
		t.Fatal(err)
	}
	got, ok := s.layers.sizes.known.Load(l.DiffID.Hex())
	if !ok || got.(int64) != want {
		t.Errorf("size known at commit %v (%v), du says %d", got, ok, want)
	}
	sizes, err := s.gc.sizes.measure(s.layers.snapshots, nil)
	if err != nil || sizes[l.DiffID.Hex()] != want {
		t.Errorf("snapshot sizes: %v, %v", sizes, err)
	}
}
