//go:build linux

package store

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/digest"
)

// TestRecords is the conformance suite of Records: a cache key's record
// is a hit only while all it names is there, and a key lock excludes
// across processes.
func TestRecords(t *testing.T) {
	t.Run("a record needs its layers", func(t *testing.T) {
		ctx := t.Context()
		s := openTemp(t)
		r := s.Records()
		key := digest.FromBytes([]byte("key"))
		if _, err := r.Lookup(ctx, key); !errors.Is(err, ErrNotFound) {
			t.Fatalf("empty store lookup: %v", err)
		}
		// A record whose layer is gone is a miss, not a broken result.
		l := Layer{DiffID: digest.FromBytes([]byte("diff")), Digest: digest.FromBytes([]byte("blob")), Size: 4, MediaType: MediaTypeLayerGzip}
		if err := r.Put(ctx, key, []Layer{l}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Lookup(ctx, key); !errors.Is(err, ErrNotFound) {
			t.Errorf("lookup with missing layer: %v", err)
		}
		// With blob, snapshot and layer record present it is a hit.
		if _, err := s.Blobs().PutBytes(ctx, []byte("blob")); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(s.Layers().SnapshotDir(l.DiffID), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := s.layers.writeRecord(layerRecord{Layer: l}); err != nil {
			t.Fatal(err)
		}
		got, err := r.Lookup(ctx, key)
		if err != nil || len(got) != 1 || got[0] != l {
			t.Fatalf("Lookup = %v, %v", got, err)
		}
		// A torn record (a crash mid-write cannot make one, but a disk can) is a miss.
		if err := os.WriteFile(r.path(key), []byte(`{"layers": [`), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Lookup(ctx, key); !errors.Is(err, ErrNotFound) {
			t.Errorf("torn record: %v", err)
		}
		if err := r.Put(ctx, "sha256:../../x", nil); err == nil {
			t.Error("a malformed key was accepted")
		}
	})

	t.Run("touch", func(t *testing.T) {
		ctx := t.Context()
		s := openTemp(t)
		key := digest.FromBytes([]byte("key"))
		if err := s.Records().Put(ctx, key, nil); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-time.Hour)
		if err := os.Chtimes(s.records.path(key), old, old); err != nil {
			t.Fatal(err)
		}
		s.Records().Touch(ctx, key)
		if fi, err := os.Stat(s.records.path(key)); err != nil || time.Since(fi.ModTime()) > time.Minute {
			t.Errorf("Touch left the record unused since %v (%v)", fi.ModTime(), err)
		}
	})

	t.Run("image records", func(t *testing.T) {
		ctx := t.Context()
		s := openTemp(t)
		key := digest.FromBytes([]byte("image key"))
		if _, err := s.Records().LookupImage(ctx, key); !IsNotFound(err) {
			t.Errorf("LookupImage of nothing: %v", err)
		}
		d, err := s.Images().Commit(ctx, &v1.ConfigFile{OS: "linux"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Records().PutImage(ctx, key, d); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Records().LookupImage(ctx, key); err != nil || got != d {
			t.Errorf("LookupImage = %s, %v; want %s", got, err, d)
		}
		// Its manifest gone, the record is a miss.
		if err := os.Remove(s.Blobs().Path(d)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Records().LookupImage(ctx, key); !IsNotFound(err) {
			t.Errorf("LookupImage of a removed image: %v", err)
		}
	})

	// Lock excludes across store handles (each its own open file, as two
	// processes would have), lets other keys through, and gives up when
	// ctx is cancelled.
	t.Run("lock", func(t *testing.T) {
		root := t.TempDir()
		a, err := Open(root)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Open(root)
		if err != nil {
			t.Fatal(err)
		}
		key := digest.FromBytes([]byte("step"))
		unlock, err := a.Records().Lock(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		// Another key is free (keys whose first hex digits differ).
		other := digest.FromBytes([]byte("other step"))
		if other.Hex()[:3] == key.Hex()[:3] {
			t.Fatal("pick another key")
		}
		u2, err := b.Records().Lock(t.Context(), other)
		if err != nil {
			t.Fatal(err)
		}
		u2()

		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		if _, err := b.Records().Lock(ctx, key); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Lock on a held key: %v, want the ctx's error", err)
		}

		var got atomic.Bool
		done := make(chan error)
		go func() {
			u, err := b.Records().Lock(t.Context(), key)
			if err == nil {
				got.Store(true)
				u()
			}
			done <- err
		}()
		time.Sleep(100 * time.Millisecond)
		if got.Load() {
			t.Fatal("the key was locked twice")
		}
		unlock()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the waiter never got the key after unlock")
		}
		if _, err := a.Records().Lock(t.Context(), "sha256:../../x"); err == nil {
			t.Error("a malformed key was accepted")
		}
	})
}
