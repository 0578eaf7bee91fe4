//go:build linux

package store

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
		dir, err := s.Temp().Dir("test-")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Temp().Remove(dir)
		up := filepath.Join(dir, "upper")
		if err := os.MkdirAll(up, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(up, "f"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := s.Layers().MoveIn(ctx, up)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	good, noBlob, noSnap := layerOf("good"), layerOf("blob goes"), layerOf("snapshot goes")
	for i, l := range []Layer{good, noBlob, noSnap} {
		if err := s.Records().Put(ctx, digest.FromBytes([]byte{byte(i)}), []Layer{l}); err != nil {
			t.Fatal(err)
		}
	}
	img, err := s.Images().Commit(ctx, &v1.ConfigFile{OS: "linux", Architecture: "amd64"}, []Layer{good})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Names().TagDurable(ctx, "good:1", img); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Check(ctx, false); err != nil || len(p) != 0 {
		t.Fatalf("a sound store: %v, %v", p, err)
	}

	// The damage.
	if err := s.Names().TagDurable(ctx, "dangling:1", digest.FromBytes([]byte("no such manifest"))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Blobs().Path(noBlob.Digest), []byte("bit rot"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(s.Layers().SnapshotDir(noSnap.DiffID)); err != nil {
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
	if l, err := s.Records().Lookup(ctx, digest.FromBytes([]byte{0})); err != nil || l[0] != good {
		t.Errorf("the good record: %v, %v", l, err)
	}
	if _, err := s.Names().Get(ctx, "good:1"); err != nil {
		t.Errorf("the good image name: %v", err)
	}
	for _, k := range [][]byte{{1}, {2}} {
		if _, err := s.Records().Lookup(ctx, digest.FromBytes(k)); err == nil {
			t.Errorf("record %v on a broken layer survived", k)
		}
	}
}

// Digests read from corrupt records name nothing: checking and collecting
// a store that has them reports them instead of failing.
func TestCorruptRecordsDoNotStopCheckOrGC(t *testing.T) {
	s, _, d := builtImage(t, map[string]string{"a": "A"})
	if err := s.Names().TagDurable(t.Context(), "app:1", d); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"layers/" + strings.Repeat("0", 64) + ".json": `{"diffID":"garbage","digest":""}`,
		"layers/" + strings.Repeat("1", 64) + ".json": `{}`,
		"keys/" + strings.Repeat("2", 64) + ".json":   `{"layers":["", "not-a-digest"]}`,
		"images/broken.json":                          `{"name":"docker.io/library/broken:1","digest":"nonsense"}`,
	} {
		if err := os.WriteFile(filepath.Join(s.Root(), name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	probs, err := s.Check(t.Context(), false)
	if err != nil || len(probs) == 0 {
		t.Errorf("Check = %v, %v; want the corrupt records reported", probs, err)
	}
	if _, err := s.GC().Run(t.Context(), []GCPolicy{{All: true}}, true); err != nil {
		t.Errorf("GC: %v", err)
	}
	if _, err := s.Names().Get(t.Context(), "sha256:"+strings.Repeat("f", 12)); !IsNotFound(err) {
		t.Errorf("Resolve by a prefix no image has: %v", err)
	}
}
