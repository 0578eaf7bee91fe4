//go:build linux

package store

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/digest"
)

// The helpers of the role tests: each test opens a store in a temp dir,
// the real implementation of every role. None needs root unless it says so.

func openTemp(t testing.TB) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// commitFiles moves a tree of files in as a layer.
func commitFiles(t *testing.T, s *Store, files map[string]string) Layer {
	t.Helper()
	dir, err := s.Temp().Dir("test-")
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err := s.Layers().MoveIn(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// builtImage commits files as one layer (fixed mtimes, so two stores make
// the same tree) and an image of it, in a fresh store.
func builtImage(t *testing.T, files map[string]string) (*Store, Layer, digest.Digest) {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir, err := s.Temp().Dir("test-")
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
	l, err := s.Layers().MoveIn(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Images().Commit(context.Background(), &v1.ConfigFile{OS: "linux", Architecture: "amd64"}, []Layer{l})
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

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: unpacking a layer chowns its files")
	}
}
