//go:build linux

package store

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/layer"
)

// TestImages is the conformance suite of Images: an image is a manifest
// and a config blob over layers of the store.
func TestImages(t *testing.T) {
	t.Run("commit, then read back", func(t *testing.T) {
		ctx := t.Context()
		s := openTemp(t)
		a := commitFiles(t, s, map[string]string{"a": "A"})
		b := commitFiles(t, s, map[string]string{"b": "B"})
		cfg := &v1.ConfigFile{OS: "linux", Architecture: "amd64", Config: v1.Config{Env: []string{"X=1"}}}
		d, err := s.Images().Commit(ctx, cfg, []Layer{a, b})
		if err != nil {
			t.Fatal(err)
		}
		if again, err := s.Images().Commit(ctx, cfg, []Layer{a, b}); err != nil || again != d {
			t.Errorf("the same config over the same layers: %s, %v; want %s", again, err, d)
		}
		img, err := s.Images().Get(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := img.Digest(); got.String() != string(d) {
			t.Errorf("Get(%s) has digest %s", d, got)
		}
		name, _ := img.ConfigName()
		if id, err := s.Images().ID(ctx, d); err != nil || string(id) != name.String() {
			t.Errorf("ID = %s, %v; want the config digest %s", id, err, name)
		}
		layers, got, err := s.Images().Layers(ctx, d)
		if err != nil || len(layers) != 2 || layers[0] != a || layers[1] != b {
			t.Fatalf("Layers = %v, %v", layers, err)
		}
		if got.Config.Env[0] != "X=1" || len(got.RootFS.DiffIDs) != 2 || got.RootFS.DiffIDs[1].String() != string(b.DiffID) {
			t.Errorf("config %+v", got)
		}
		missing := digest.FromBytes([]byte("no such manifest"))
		if _, err := s.Images().Get(ctx, missing); !IsNotFound(err) {
			t.Errorf("Get of a missing image: %v", err)
		}
		if _, _, err := s.Images().Layers(ctx, missing); !IsNotFound(err) {
			t.Errorf("Layers of a missing image: %v", err)
		}
		if _, err := s.Images().ID(ctx, missing); !IsNotFound(err) {
			t.Errorf("ID of a missing image: %v", err)
		}
		// An image whose layer went missing is not whole.
		if err := os.RemoveAll(s.Layers().SnapshotDir(b.DiffID)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Images().Layers(ctx, d); !IsNotFound(err) {
			t.Errorf("Layers with a snapshot gone: %v", err)
		}
	})

	t.Run("config extras", func(t *testing.T) {
		ctx := t.Context()
		s := openTemp(t)
		cfg := &v1.ConfigFile{OS: "linux", Config: v1.Config{Healthcheck: &v1.HealthConfig{Test: []string{"CMD", "true"}}}}
		d, err := s.Images().Commit(ctx, cfg, nil, ConfigExtras{HealthStartInterval: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		img, err := s.Images().Get(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := img.RawConfigFile()
		var c struct {
			Config struct{ Healthcheck struct{ StartInterval int64 } } `json:"config"`
		}
		if err := json.Unmarshal(raw, &c); err != nil || c.Config.Healthcheck.StartInterval != int64(3*time.Second) {
			t.Errorf("StartInterval in %s: %v", raw, err)
		}
	})

	t.Run("image keys ignore timestamps", func(t *testing.T) {
		l := Layer{DiffID: digest.FromBytes([]byte("d")), Digest: digest.FromBytes([]byte("d")), MediaType: MediaTypeLayerTar}
		at := func(sec int64) *v1.ConfigFile {
			tm := v1.Time{Time: time.Unix(sec, 0)}
			return &v1.ConfigFile{OS: "linux", Created: tm, History: []v1.History{{Created: tm, CreatedBy: "RUN x"}}}
		}
		k1, err1 := ImageKey(at(1), []Layer{l})
		k2, err2 := ImageKey(at(2), []Layer{l})
		k3, err3 := ImageKey(at(1), []Layer{l}, ConfigExtras{HealthStartInterval: time.Second})
		if err := errors.Join(err1, err2, err3); err != nil || k1 != k2 || k1 == k3 {
			t.Errorf("keys %s %s %s (%v): want the first two equal, the third apart", k1, k2, k3, err)
		}
	})

	t.Run("import and pull", func(t *testing.T) {
		requireRoot(t) // unpacking a layer chowns its files
		ctx := t.Context()
		s := openTemp(t)
		img, err := random.Image(2048, 2)
		if err != nil {
			t.Fatal(err)
		}
		d, err := s.Images().Import(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := img.Digest(); string(d) != want.String() {
			t.Errorf("Import = %s, want the image's manifest %s", d, want)
		}
		layers, _, err := s.Images().Layers(ctx, d)
		if err != nil || len(layers) != 2 || layers[0].MediaType != MediaTypeLayerGzip {
			t.Fatalf("imported layers %v, %v", layers, err)
		}

		srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		defer srv.Close()
		ref := strings.TrimPrefix(srv.URL, "http://") + "/app:1"
		r, err := name.ParseReference(ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(r, img, remote.WithContext(ctx)); err != nil {
			t.Fatal(err)
		}
		other := openTemp(t)
		if _, err := other.Images().Pull(ctx, ref, "linux/amd64", PullNever); !IsNotFound(err) {
			t.Errorf("--pull=never of an image not there: %v", err)
		}
		p, err := other.Images().Pull(ctx, ref, "linux/amd64", PullMissing)
		if err != nil || p.Digest != d || p.Name != ref {
			t.Fatalf("Pull = %+v, %v; want %s as %s", p, err, d, ref)
		}
		if rec, err := other.Names().Get(ctx, ref); err != nil || rec.Digest != d {
			t.Errorf("the pulled name: %+v, %v", rec, err)
		}
		srv.Close() // what is in the store needs no registry now
		if p, err := other.Images().Pull(ctx, ref, "linux/amd64", PullMissing); err != nil || p.Digest != d {
			t.Errorf("Pull of an image already there: %+v, %v", p, err)
		}
	})
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
	if _, err := s.Blobs().Stat(ctx, l.Digest); err == nil {
		t.Error("a blob was written for a built layer")
	}
	if got, err := s.Layers().Get(ctx, l.DiffID); err != nil || got != l {
		t.Fatalf("Layer = %+v, %v", got, err)
	}

	// The stored image reads its layer from the snapshot.
	img, err := s.Images().Get(ctx, d)
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
	dist, err := s.Images().DistributableAs(ctx, d, layer.Codec{Kind: layer.Gzip}, false)
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
	if n, err := s.Blobs().Stat(ctx, gz); err != nil || n != m.Layers[0].Size {
		t.Errorf("gzip blob %s: %v, size %d vs %d", gz, err, n, m.Layers[0].Size)
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
	fi1, err := os.Stat(s.Blobs().Path(gz))
	if err != nil {
		t.Fatal(err)
	}
	dist2, err := s.Images().DistributableAs(ctx, d, layer.Codec{Kind: layer.Gzip}, false)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := dist.Digest()
	d2, _ := dist2.Digest()
	if d1 != d2 {
		t.Errorf("two exports: %s vs %s", d1, d2)
	}
	if fi2, err := os.Stat(s.Blobs().Path(gz)); err != nil || !os.SameFile(fi1, fi2) {
		t.Errorf("the gzip blob was made again: %v", err)
	}

	// Another store, same tree: the same image, byte for byte.
	s2, _, other := builtImage(t, files)
	if other != d {
		t.Errorf("stored manifests differ across stores: %s vs %s", d, other)
	}
	dist3, err := s2.Images().DistributableAs(ctx, other, layer.Codec{Kind: layer.Gzip}, false)
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
	if err := s.Names().TagDurable(ctx, "keep:1", d); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC().Run(ctx, []GCPolicy{{All: true}}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Blobs().Stat(ctx, gz); err != nil {
		t.Error("GC removed the gzip blob of a layer an image uses")
	}
	if err := s.Names().Untag(ctx, "keep:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC().Run(ctx, []GCPolicy{{All: true}}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Blobs().Stat(ctx, gz); err == nil {
		t.Error("GC kept the gzip blob of a removed layer")
	}
	if _, err := s.Layers().Get(ctx, l.DiffID); err == nil {
		t.Error("GC kept an unused layer")
	}
}

// A snapshot changed after its layer was recorded never leaves under the
// old digest, and store check reports it.
func TestChangedSnapshotIsCaught(t *testing.T) {
	ctx := context.Background()
	s, l, d := builtImage(t, map[string]string{"f": "original\n"})
	if err := os.WriteFile(filepath.Join(s.Layers().SnapshotDir(l.DiffID), "f"), []byte("tampered\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Images().DistributableAs(ctx, d, layer.Codec{Kind: layer.Gzip}, false); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("export of a changed snapshot: %v", err)
	}
	if err := s.Names().TagDurable(ctx, "x:1", d); err != nil {
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
	if _, err := s.Layers().Get(ctx, l.DiffID); err == nil {
		t.Error("the changed layer is still served")
	}
}
