//go:build linux

package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-build/kiln/digest"
)

// TestBlobs is the conformance suite of Blobs: content-addressed, every
// write verified and atomic, every read of a small blob verified.
func TestBlobs(t *testing.T) {
	t.Run("put, stat, read", func(t *testing.T) {
		ctx := t.Context()
		b := openTemp(t).Blobs()
		d, n, err := b.Put(ctx, strings.NewReader("hello"), "")
		if err != nil || n != 5 || d != digest.FromBytes([]byte("hello")) {
			t.Fatalf("Put = %s, %d, %v", d, n, err)
		}
		if got, err := b.Stat(ctx, d); err != nil || got != 5 {
			t.Errorf("Stat = %d, %v", got, err)
		}
		if got, err := b.Read(ctx, d); err != nil || string(got) != "hello" {
			t.Errorf("Read = %q, %v", got, err)
		}
		if pd, err := b.PutBytes(ctx, []byte("hello")); err != nil || pd != d {
			t.Errorf("PutBytes of the same bytes = %s, %v", pd, err)
		}
		if _, err := os.Stat(b.Path(d)); err != nil {
			t.Errorf("Path(%s): %v", d, err)
		}
	})

	t.Run("what does not hash to its digest is refused", func(t *testing.T) {
		ctx := t.Context()
		s := openTemp(t)
		b := s.Blobs()
		want := digest.FromBytes([]byte("not it"))
		if _, _, err := b.Put(ctx, strings.NewReader("other"), want); err == nil {
			t.Error("a blob that does not match its expected digest was accepted")
		}
		if _, err := b.Stat(ctx, want); !IsNotFound(err) {
			t.Errorf("a mismatching blob was stored: %v", err)
		}
		w, err := b.Writer(ctx)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("written"))
		if _, _, err := w.Commit(ctx, want); err == nil {
			t.Error("BlobWriter.Commit of the wrong content succeeded")
		}
		// No temp files are left behind by either outcome.
		if ents, _ := os.ReadDir(filepath.Join(s.Root(), "tmp")); len(ents) != 0 {
			t.Errorf("temp files left: %v", ents)
		}
	})

	t.Run("corrupt, missing and malformed", func(t *testing.T) {
		ctx := t.Context()
		b := openTemp(t).Blobs()
		d, err := b.PutBytes(ctx, []byte("hello"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(b.Path(d), []byte("HELLO"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Read(ctx, d); err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("Read of a corrupt blob: %v", err)
		}
		missing := digest.FromBytes([]byte("missing"))
		if _, err := b.Open(ctx, missing); !errors.Is(err, ErrNotFound) {
			t.Errorf("Open of a missing blob: %v", err)
		}
		if _, err := b.Stat(ctx, missing); !errors.Is(err, ErrNotFound) {
			t.Errorf("Stat of a missing blob: %v", err)
		}
		for _, bad := range []digest.Digest{"sha256:../../etc/passwd", ""} {
			if _, err := b.Open(ctx, bad); err == nil || IsNotFound(err) {
				t.Errorf("Open(%q): %v, want a malformed-digest error", bad, err)
			}
		}
	})

	t.Run("concurrent writes of one blob", func(t *testing.T) {
		ctx := t.Context()
		b := openTemp(t).Blobs()
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, _, err := b.Put(ctx, strings.NewReader("same content"), ""); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		got, err := b.Read(ctx, digest.FromBytes([]byte("same content")))
		if err != nil || string(got) != "same content" {
			t.Errorf("%q %v", got, err)
		}
	})
}
