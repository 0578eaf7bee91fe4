//go:build linux

package cache

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/digest"
)

func TestImageID(t *testing.T) {
	s, _, d := builtImage(t, map[string]string{"a": "A"})
	img, err := s.Image(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	want, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if id, err := s.ImageID(t.Context(), d); err != nil || string(id) != want.String() {
		t.Errorf("ImageID = %s, %v; want the config digest %s", id, err, want)
	}
	if _, err := s.ImageID(t.Context(), digest.FromBytes([]byte("no such manifest"))); !IsNotFound(err) {
		t.Errorf("ImageID of a missing image: %v", err)
	}
}

// A stopped container's writable layer becomes the top layer of a new
// image, with a history entry saying what ran; a running one is refused.
func TestCommitContainer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the copied layer keeps its files' owners")
	}
	ctx := t.Context()
	s, base, d := builtImage(t, map[string]string{"a": "A"})
	c := &Container{Name: "box", Image: "app:1", Digest: d, Command: []string{"sh", "-c", "echo B > /b"}}
	if err := s.CreateContainer(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.ContainerDir(c.ID), "upper", "b"), []byte("B\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Status = "running"
	if err := s.SaveContainer(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitContainer(ctx, "box", ContainerCommit{}); err == nil || !strings.Contains(err.Error(), "container box is running") {
		t.Errorf("commit of a running container: %v", err)
	}
	c.Status = "exited"
	if err := s.SaveContainer(ctx, c); err != nil {
		t.Fatal(err)
	}
	nd, err := s.CommitContainer(ctx, c.ID[:12], ContainerCommit{Author: "me", Message: "add b"})
	if err != nil {
		t.Fatal(err)
	}
	layers, cfg, err := s.ImageLayers(ctx, nd)
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 2 || layers[0] != base {
		t.Fatalf("layers %v: want the base's and one more", layers)
	}
	if b, err := os.ReadFile(filepath.Join(s.SnapshotDir(layers[1].DiffID), "b")); err != nil || string(b) != "B\n" {
		t.Errorf("the new layer's b: %q, %v", b, err)
	}
	h := cfg.History[len(cfg.History)-1]
	if h.CreatedBy != "[sh -c echo B > /b]" || h.Author != "me" || h.Comment != "add b" || cfg.Author != "me" || cfg.Created.IsZero() || !h.Created.Equal(cfg.Created.Time) {
		t.Errorf("config author %q created %v, history entry %+v", cfg.Author, cfg.Created, h)
	}
	// The container and its image are as they were.
	if old, _, err := s.ImageLayers(ctx, d); err != nil || len(old) != 1 {
		t.Errorf("the base image now has %d layers (%v)", len(old), err)
	}
	if _, err := os.Stat(filepath.Join(s.ContainerDir(c.ID), "upper", "b")); err != nil {
		t.Errorf("the container's upper dir changed: %v", err)
	}
}

// Digests read from corrupt records name nothing: checking and collecting
// a store that has them reports them instead of failing.
func TestCorruptRecordsDoNotStopCheckOrGC(t *testing.T) {
	s, _, d := builtImage(t, map[string]string{"a": "A"})
	if err := s.Tag(t.Context(), "app:1", d); err != nil {
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
	if _, err := s.GC(t.Context(), []GCPolicy{{All: true}}, true); err != nil {
		t.Errorf("GC: %v", err)
	}
	if _, err := s.Resolve(t.Context(), "sha256:"+strings.Repeat("f", 12)); !IsNotFound(err) {
		t.Errorf("Resolve by a prefix no image has: %v", err)
	}
}
