//go:build linux

package cache

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/digest"
)

// Check finds each kind of damage; --repair removes exactly the broken
// entries and what depends on them, after which the store checks clean.
func TestCheckAndRepair(t *testing.T) {
	ctx := t.Context()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	layerOf := func(content string) Layer {
		t.Helper()
		dir, err := s.TempDir("test-")
		if err != nil {
			t.Fatal(err)
		}
		defer s.RemoveTemp(dir)
		up := filepath.Join(dir, "upper")
		if err := os.MkdirAll(up, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(up, "f"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := s.CommitDir(ctx, up)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	good, noBlob, noSnap := layerOf("good"), layerOf("blob goes"), layerOf("snapshot goes")
	for i, l := range []Layer{good, noBlob, noSnap} {
		if err := s.Record(ctx, digest.FromBytes([]byte{byte(i)}), []Layer{l}); err != nil {
			t.Fatal(err)
		}
	}
	img, err := s.CommitImage(ctx, &v1.ConfigFile{OS: "linux", Architecture: "amd64"}, []Layer{good})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, "good:1", img); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Check(ctx, false); err != nil || len(p) != 0 {
		t.Fatalf("a sound store: %v, %v", p, err)
	}

	// The damage.
	if err := s.Tag(ctx, "dangling:1", digest.FromBytes([]byte("no such manifest"))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.BlobPath(noBlob.Digest), []byte("bit rot"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(s.SnapshotDir(noSnap.DiffID)); err != nil {
		t.Fatal(err)
	}
	probs, err := s.Check(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range probs {
		got = append(got, filepath.Base(filepath.Dir(p.Path))+": "+p.What)
	}
	for _, want := range []string{
		"sha256: blob content hashes to",
		"layers: layer " + string(noBlob.DiffID) + ": blob",
		"layers: layer " + string(noSnap.DiffID) + ": snapshot missing",
		"keys: cache record needs layer " + string(noBlob.DiffID),
		"keys: cache record needs layer " + string(noSnap.DiffID),
		"images: image docker.io/library/dangling:1: manifest",
	} {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, want) }) {
			t.Errorf("no problem %q in:\n%s", want, strings.Join(got, "\n"))
		}
	}
	if len(got) != 6 {
		t.Errorf("%d problems, want 6:\n%s", len(got), strings.Join(got, "\n"))
	}
	if _, err := s.Check(ctx, true); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Check(ctx, false); err != nil || len(p) != 0 {
		t.Errorf("after repair: %v, %v", p, err)
	}
	// What was sound survives the repair.
	if l, err := s.Lookup(ctx, digest.FromBytes([]byte{0})); err != nil || l[0] != good {
		t.Errorf("the good record: %v, %v", l, err)
	}
	if _, err := s.Resolve(ctx, "good:1"); err != nil {
		t.Errorf("the good image name: %v", err)
	}
	for _, k := range [][]byte{{1}, {2}} {
		if _, err := s.Lookup(ctx, digest.FromBytes(k)); err == nil {
			t.Errorf("record %v on a broken layer survived", k)
		}
	}
}
