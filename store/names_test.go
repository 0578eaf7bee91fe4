//go:build linux

package store

import (
	"errors"
	"os"
	"testing"
)

// TestNames is the conformance suite of Names: an image name is found by
// any spelling of it, by digest reference, or by a manifest digest prefix.
func TestNames(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	n := s.Names()
	d, err := s.Blobs().PutBytes(ctx, []byte(`{"schemaVersion":2}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"hello", "127.0.0.1:5000/x/y:z"} {
		if err := n.TagDurable(ctx, ref, d); err != nil {
			t.Fatalf("TagDurable %s: %v", ref, err)
		}
	}
	if err := n.TagAtomic(ctx, "hello:1", d); err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{
		"hello":                          "docker.io/library/hello:latest",
		"docker.io/library/hello:latest": "docker.io/library/hello:latest",
		"hello:1":                        "docker.io/library/hello:1",
		"127.0.0.1:5000/x/y:z":           "127.0.0.1:5000/x/y:z",
	} {
		rec, err := n.Get(ctx, ref)
		if err != nil || rec.Name != want || rec.Digest != d {
			t.Errorf("Get(%s) = %+v, %v; want %s", ref, rec, err, want)
		}
	}
	if _, err := n.Get(ctx, "nothere"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(nothere): %v", err)
	}
	if rec, err := n.Get(ctx, d.Hex()[:12]); err != nil || rec.Digest != d {
		t.Errorf("Get by short digest: %+v %v", rec, err)
	}
	if rec, err := n.Get(ctx, "hello@"+string(d)); err != nil || rec.Digest != d {
		t.Errorf("Get by digest reference: %+v %v", rec, err)
	}
	if err := n.TagDurable(ctx, "hello@"+string(d), d); err == nil {
		t.Error("tagged with a digest reference")
	}
	imgs, err := n.List(ctx)
	if err != nil || len(imgs) != 3 || imgs[0].Name != "127.0.0.1:5000/x/y:z" {
		t.Errorf("List = %v, %v", imgs, err)
	}
	// Re-tagging what a name already names writes nothing.
	before, _ := os.Stat(n.path("docker.io/library/hello:1"))
	if err := n.TagAtomic(ctx, "hello:1", d); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(n.path("docker.io/library/hello:1")); !os.SameFile(before, after) {
		t.Error("an unchanged name was rewritten")
	}
	if err := n.Untag(ctx, "hello:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Get(ctx, "hello:1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after Untag: %v", err)
	}
	if err := n.Untag(ctx, "hello:1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Untag of a removed name: %v", err)
	}
	// A name whose manifest is gone names nothing.
	if err := os.Remove(s.Blobs().Path(d)); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Get(ctx, "hello"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of a name without its manifest: %v", err)
	}
}
