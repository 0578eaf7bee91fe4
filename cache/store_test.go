//go:build linux

package cache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-build/kiln/digest"
)

func TestBlobsAreVerifiedAndAtomic(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d, n, err := s.PutBlob(ctx, strings.NewReader("hello"), "")
	if err != nil || n != 5 {
		t.Fatalf("PutBlob: %v %d", err, n)
	}
	if d != digest.FromBytes([]byte("hello")) {
		t.Errorf("digest %s", d)
	}
	if _, _, err := s.PutBlob(ctx, strings.NewReader("other"), digest.FromBytes([]byte("not it"))); err == nil {
		t.Error("a blob that does not match its expected digest was accepted")
	}
	if _, ok := s.HasBlob(digest.FromBytes([]byte("not it"))); ok {
		t.Error("a mismatching blob was stored")
	}
	// No temp files are left behind by either outcome.
	if ents, _ := os.ReadDir(filepath.Join(s.Root(), "tmp")); len(ents) != 0 {
		t.Errorf("temp files left: %v", ents)
	}
	// A corrupted blob is detected on read.
	if err := os.WriteFile(s.BlobPath(d), []byte("HELLO"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadBlob(ctx, d); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("ReadBlob of corrupt blob: %v", err)
	}
	if _, err := s.OpenBlob(ctx, digest.FromBytes([]byte("missing"))); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing blob: %v", err)
	}
	if _, err := s.OpenBlob(ctx, "sha256:../../etc/passwd"); err == nil {
		t.Error("a malformed digest was accepted")
	}
}

func TestConcurrentBlobWrites(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := s.PutBlob(ctx, strings.NewReader("same content"), ""); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	b, err := s.ReadBlob(ctx, digest.FromBytes([]byte("same content")))
	if err != nil || string(b) != "same content" {
		t.Errorf("%q %v", b, err)
	}
}

func TestRecordsNeedTheirLayers(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key := digest.FromBytes([]byte("key"))
	if _, err := s.Lookup(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty store lookup: %v", err)
	}
	// A record whose layer is gone is a miss, not a broken result.
	l := Layer{DiffID: digest.FromBytes([]byte("diff")), Digest: digest.FromBytes([]byte("blob")), Size: 4, MediaType: MediaTypeLayerGzip}
	if err := s.Record(ctx, key, []Layer{l}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Errorf("lookup with missing layer: %v", err)
	}
	// With blob, snapshot and layer record present it is a hit.
	if _, err := s.PutBlobBytes(ctx, []byte("blob")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(s.SnapshotDir(l.DiffID), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.writeJSON(s.layerPath(l.DiffID), l); err != nil {
		t.Fatal(err)
	}
	got, err := s.Lookup(ctx, key)
	if err != nil || len(got) != 1 || got[0] != l {
		t.Fatalf("Lookup = %v, %v", got, err)
	}
	// A torn record (a crash mid-write cannot make one, but a disk can) is a miss.
	if err := os.WriteFile(s.keyPath(key), []byte("{\"layers\": ["), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Errorf("torn record: %v", err)
	}
}

func TestTagsAndNames(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.PutBlobBytes(ctx, []byte(`{"schemaVersion":2}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"hello", "hello:1", "127.0.0.1:5000/x/y:z"} {
		if err := s.Tag(ctx, ref, d); err != nil {
			t.Fatalf("Tag %s: %v", ref, err)
		}
	}
	tests := map[string]string{
		"hello":                          "docker.io/library/hello:latest",
		"docker.io/library/hello:latest": "docker.io/library/hello:latest",
		"hello:1":                        "docker.io/library/hello:1",
		"127.0.0.1:5000/x/y:z":           "127.0.0.1:5000/x/y:z",
	}
	for ref, want := range tests {
		rec, err := s.Resolve(ctx, ref)
		if err != nil || rec.Name != want || rec.Digest != d {
			t.Errorf("Resolve(%s) = %+v, %v; want %s", ref, rec, err, want)
		}
	}
	if _, err := s.Resolve(ctx, "nothere"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(nothere): %v", err)
	}
	if rec, err := s.Resolve(ctx, d.Hex()[:12]); err != nil || rec.Digest != d {
		t.Errorf("Resolve by short digest: %+v %v", rec, err)
	}
	imgs, err := s.Images(ctx)
	if err != nil || len(imgs) != 3 {
		t.Errorf("Images = %v, %v", imgs, err)
	}
	if err := s.Untag(ctx, "hello:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resolve(ctx, "hello:1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after Untag: %v", err)
	}
}
