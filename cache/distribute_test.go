//go:build linux

package cache

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/digest"
)

// builtImage commits files as one layer (fixed mtimes, so two stores make
// the same tree) and an image of it, in a fresh store.
func builtImage(t *testing.T, files map[string]string) (*Store, Layer, digest.Digest) {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir, err := s.TempDir("test-")
	if err != nil {
		t.Fatal(err)
	}
	stamp := time.Unix(1700000000, 0)
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, stamp, stamp); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(dir, stamp, stamp); err != nil {
		t.Fatal(err)
	}
	l, err := s.CommitDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.CommitImage(context.Background(), &v1.ConfigFile{OS: "linux", Architecture: "amd64"}, []Layer{l})
	if err != nil {
		t.Fatal(err)
	}
	return s, l, d
}

// tarFiles reads a layer tar into name → content.
func tarFiles(t *testing.T, r io.Reader) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = string(b)
	}
}

// A built layer is stored as its snapshot only; it is gzipped when it
// leaves the machine, once, the same way in every store.
func TestBuiltLayersAreCompressedOnlyToLeave(t *testing.T) {
	ctx := context.Background()
	files := map[string]string{"a": "alpha\n", "b": strings.Repeat("kiln ", 1000)}
	s, l, d := builtImage(t, files)
	if !l.FromSnapshot() || l.Digest != l.DiffID || l.MediaType != MediaTypeLayerTar {
		t.Fatalf("built layer %+v is not stored uncompressed", l)
	}
	if _, ok := s.HasBlob(l.Digest); ok {
		t.Error("a blob was written for a built layer")
	}
	if got, err := s.Layer(l.DiffID); err != nil || got != l {
		t.Fatalf("Layer = %+v, %v", got, err)
	}

	// The stored image reads its layer from the snapshot.
	img, err := s.Image(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil || len(ls) != 1 {
		t.Fatalf("layers %v %v", ls, err)
	}
	rc, err := ls[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	if got := tarFiles(t, rc); got["a"] != files["a"] || got["b"] != files["b"] {
		t.Errorf("stored image layer has %v", got)
	}
	rc.Close()

	// The distributable one has a gzip layer with the same diffID.
	dist, err := s.DistributableImage(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	m, err := dist.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Layers[0].MediaType != types.OCILayer || m.Layers[0].Digest.String() == string(l.DiffID) {
		t.Errorf("distributable layer %+v is not gzip", m.Layers[0])
	}
	gz := digest.Digest(m.Layers[0].Digest.String())
	if n, ok := s.HasBlob(gz); !ok || n != m.Layers[0].Size {
		t.Errorf("gzip blob %s: in store %v, size %d vs %d", gz, ok, n, m.Layers[0].Size)
	}
	dl, err := dist.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if id, err := dl[0].DiffID(); err != nil || id.String() != string(l.DiffID) {
		t.Errorf("diffID %v %v, want %s", id, err, l.DiffID)
	}
	ur, err := dl[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	if got := tarFiles(t, ur); got["b"] != files["b"] {
		t.Errorf("gzip layer content: %v", got)
	}
	ur.Close()
	fs := mutate.Extract(dist)
	if got := tarFiles(t, fs); got["a"] != files["a"] {
		t.Errorf("flattened: %v", got)
	}
	fs.Close()
	cfgName, _ := img.ConfigName()
	if dn, _ := dist.ConfigName(); dn != cfgName {
		t.Errorf("config (image ID) changed: %s vs %s", dn, cfgName)
	}

	// The second export reuses the blob; its manifest is the same.
	fi1, err := os.Stat(s.BlobPath(gz))
	if err != nil {
		t.Fatal(err)
	}
	dist2, err := s.DistributableImage(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := dist.Digest()
	d2, _ := dist2.Digest()
	if d1 != d2 {
		t.Errorf("two exports: %s vs %s", d1, d2)
	}
	if fi2, err := os.Stat(s.BlobPath(gz)); err != nil || !os.SameFile(fi1, fi2) {
		t.Errorf("the gzip blob was made again: %v", err)
	}

	// Another store, same tree: the same image, byte for byte.
	s2, _, other := builtImage(t, files)
	if other != d {
		t.Errorf("stored manifests differ across stores: %s vs %s", d, other)
	}
	dist3, err := s2.DistributableImage(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if d3, _ := dist3.Digest(); d3 != d1 {
		t.Errorf("distributable manifests differ across stores: %s vs %s", d1, d3)
	}

	// The gzip blob lives as long as its layer; it is checked like any blob.
	if p, err := s.Check(ctx, false); err != nil || len(p) != 0 {
		t.Errorf("check after export: %v %v", p, err)
	}
	if err := s.Tag(ctx, "keep:1", d); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(ctx, []GCPolicy{{All: true}}, false); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.HasBlob(gz); !ok {
		t.Error("GC removed the gzip blob of a layer an image uses")
	}
	if err := s.Untag(ctx, "keep:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(ctx, []GCPolicy{{All: true}}, false); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.HasBlob(gz); ok {
		t.Error("GC kept the gzip blob of a removed layer")
	}
	if _, err := s.Layer(l.DiffID); err == nil {
		t.Error("GC kept an unused layer")
	}
}

// A snapshot changed after its layer was recorded never leaves under the
// old digest, and store check reports it.
func TestChangedSnapshotIsCaught(t *testing.T) {
	ctx := context.Background()
	s, l, d := builtImage(t, map[string]string{"f": "original\n"})
	if err := os.WriteFile(filepath.Join(s.SnapshotDir(l.DiffID), "f"), []byte("tampered\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DistributableImage(ctx, d); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("export of a changed snapshot: %v", err)
	}
	if err := s.Tag(ctx, "x:1", d); err != nil {
		t.Fatal(err)
	}
	probs, err := s.Check(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	var what []string
	for _, p := range probs {
		what = append(what, p.What)
	}
	joined := strings.Join(what, "\n")
	if !strings.Contains(joined, "layer "+string(l.DiffID)+": snapshot changed") || !strings.Contains(joined, "image docker.io/library/x:1: layer") {
		t.Errorf("check found:\n%s", joined)
	}
	if _, err := s.Check(ctx, true); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Check(ctx, false); err != nil || len(p) != 0 {
		t.Errorf("after repair: %v %v", p, err)
	}
	if _, err := s.Layer(l.DiffID); err == nil {
		t.Error("the changed layer is still served")
	}
}
