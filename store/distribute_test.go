//go:build linux

package store

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/layer"
)

// countBlobs is how many blobs the store holds.
func countBlobs(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	err := filepath.Walk(s.blobs.dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDistributableCodecs: each codec compresses a layer once, the blob
// is reused by every later export, and reads back to the layer's tar.
func TestDistributableCodecs(t *testing.T) {
	ctx := t.Context()
	s, l, d := builtImage(t, map[string]string{"f": string(bytes.Repeat([]byte("kiln "), 4000))})
	for _, tc := range []struct {
		codec layer.Codec
		mt    types.MediaType
		blob  bool // whether a blob is stored for it
	}{
		{layer.Codec{Kind: layer.Gzip}, types.OCILayer, true},
		{layer.Codec{Kind: layer.Gzip, Level: 9}, types.OCILayer, true},
		{layer.Codec{Kind: layer.Zstd}, types.OCILayerZStd, true},
		{layer.Codec{Kind: layer.Zstd, Level: 19}, types.OCILayerZStd, true},
		{layer.Codec{Kind: layer.Uncompressed}, types.OCIUncompressedLayer, false},
	} {
		t.Run(tc.codec.String(), func(t *testing.T) {
			before := countBlobs(t, s)
			img, err := s.Images().DistributableAs(ctx, d, tc.codec, false)
			if err != nil {
				t.Fatal(err)
			}
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Layers[0].MediaType; got != tc.mt {
				t.Errorf("media type %s, want %s", got, tc.mt)
			}
			made := countBlobs(t, s) - before
			if want := map[bool]int{true: 1, false: 0}[tc.blob]; made != want {
				t.Errorf("the export stored %d blobs, want %d", made, want)
			}
			again, err := s.Images().DistributableAs(ctx, d, tc.codec, false)
			if err != nil {
				t.Fatal(err)
			}
			m2, _ := again.Manifest()
			if m2.Layers[0].Digest != m.Layers[0].Digest || countBlobs(t, s)-before != made {
				t.Errorf("second export: %+v (stored %d), first %+v", m2.Layers[0], countBlobs(t, s)-before, m.Layers[0])
			}
			ls, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			rc, err := ls[0].Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || digest.FromBytes(b) != l.DiffID {
				t.Errorf("the %s blob reads back to %s (%v), want %s", tc.codec, digest.FromBytes(b), err, l.DiffID)
			}
		})
	}
	// Another store makes the same zstd blob: the codec is pinned.
	s2, _, d2 := builtImage(t, map[string]string{"f": string(bytes.Repeat([]byte("kiln "), 4000))})
	a, err := s.Images().DistributableAs(ctx, d, layer.Codec{Kind: layer.Zstd}, false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s2.Images().DistributableAs(ctx, d2, layer.Codec{Kind: layer.Zstd}, false)
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Errorf("two stores give zstd manifests %s and %s", da, db)
	}
}

// TestLayerRecordOldGzip: a record written before codecs, with its gzip
// blob in "gzip", is still read: the blob is reused, not made again.
func TestLayerRecordOldGzip(t *testing.T) {
	ctx := t.Context()
	s, l, _ := builtImage(t, map[string]string{"f": "old record"})
	ref, err := s.Layers().Gzip(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	old := map[string]any{"diffID": l.DiffID, "digest": l.Digest, "size": l.Size, "mediaType": l.MediaType, "gzip": ref}
	b, _ := json.Marshal(old)
	if err := os.WriteFile(s.layers.recordPath(l.DiffID), b, 0o644); err != nil {
		t.Fatal(err)
	}
	// A blob made again would be identical: poison the record's to see
	// which one is returned.
	n := countBlobs(t, s)
	got, err := s.Layers().Blob(ctx, l, layer.Codec{Kind: layer.Gzip})
	if err != nil || got != ref || countBlobs(t, s) != n {
		t.Errorf("Blob(gzip) over an old record = %+v, %v (blobs %d → %d); want %+v", got, err, n, countBlobs(t, s), ref)
	}
}

// TestRewriteTimestamp: files newer than the epoch get the epoch, older
// ones keep their time; the layer is made once per epoch; a base layer
// (not built here) is kept.
func TestRewriteTimestamp(t *testing.T) {
	requireRoot(t)
	ctx := t.Context()
	s := openTemp(t)
	dir, err := s.Temp().Dir("test-")
	if err != nil {
		t.Fatal(err)
	}
	epoch := time.Unix(1700000000, 0)
	old, recent := epoch.Add(-time.Hour), epoch.Add(time.Hour)
	for name, at := range map[string]time.Time{"old": old, "new": recent} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
	l, err := s.Layers().MoveIn(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Images().Commit(ctx, &v1.ConfigFile{OS: "linux", Architecture: "amd64"}, []Layer{l})
	if err != nil {
		t.Fatal(err)
	}
	nd, err := s.Images().RewriteTimestamp(ctx, d, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if nd == d {
		t.Fatal("RewriteTimestamp changed nothing")
	}
	again, err := s.Images().RewriteTimestamp(ctx, d, epoch)
	if err != nil || again != nd {
		t.Errorf("second RewriteTimestamp = %s, %v; want %s", again, err, nd)
	}
	if same, err := s.Images().RewriteTimestamp(ctx, nd, epoch); err != nil || same != nd {
		t.Errorf("RewriteTimestamp of the clamped image = %s, %v; want it unchanged", same, err)
	}
	img, err := s.Images().Get(ctx, nd)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ls[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	times := map[string]time.Time{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		times[h.Name] = h.ModTime
	}
	if !times["old"].Equal(old) || !times["new"].Equal(epoch) {
		t.Errorf("clamped times: old %v (want %v), new %v (want %v)", times["old"], old, times["new"], epoch)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := ls[0].DiffID(); cfg.RootFS.DiffIDs[0] != id || id.String() == string(l.DiffID) {
		t.Errorf("config diff_ids %v, layer %s (was %s)", cfg.RootFS.DiffIDs, id, l.DiffID)
	}
}
