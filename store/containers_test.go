//go:build linux

package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestContainers is the conformance suite of Containers: a record and a
// writable layer per container, found by name, ID or ID prefix.
func TestContainers(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	cs := s.Containers()
	a := &Container{Name: "a", Image: "app:1", Command: []string{"true"}}
	if err := cs.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	if len(a.ID) != 64 || a.Status != "created" || a.Created.IsZero() {
		t.Errorf("created %+v", a)
	}
	for _, d := range []string{"upper", "work"} {
		if fi, err := os.Stat(filepath.Join(cs.Dir(a.ID), d)); err != nil || !fi.IsDir() {
			t.Errorf("%s dir: %v", d, err)
		}
	}
	if err := cs.Create(ctx, &Container{Name: "a"}); err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("a second container named a: %v", err)
	}
	time.Sleep(10 * time.Millisecond) // Created orders List
	b := &Container{}
	if err := cs.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	if b.Name != "kiln_"+b.ID[:12] {
		t.Errorf("unnamed container named %q", b.Name)
	}
	for _, ref := range []string{"a", a.ID, a.ID[:4]} {
		if c, err := cs.Get(ctx, ref); err != nil || c.ID != a.ID {
			t.Errorf("Get(%q) = %s, %v; want %s", ref, c.ID, err, a.ID)
		}
	}
	if _, err := cs.Get(ctx, "nobody"); !IsNotFound(err) {
		t.Errorf("Get(nobody): %v", err)
	}
	// A running container whose kiln process died reads as exited.
	a.Status, a.Pid = "running", 1<<22+1
	if err := cs.Save(ctx, a); err != nil {
		t.Fatal(err)
	}
	all, err := cs.List(ctx)
	if err != nil || len(all) != 2 || all[0].ID != b.ID || all[1].ID != a.ID {
		t.Fatalf("List = %v, %v; want b then a", all, err)
	}
	if all[1].Status != "exited" {
		t.Errorf("a dead container's status %q", all[1].Status)
	}
	if err := cs.Remove(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cs.Dir(a.ID)); !os.IsNotExist(err) {
		t.Errorf("removed container's dir: %v", err)
	}
	if _, err := cs.Get(ctx, "a"); !IsNotFound(err) {
		t.Errorf("Get after Remove: %v", err)
	}
	for _, bad := range []string{"", "../x", "."} {
		if err := cs.Remove(ctx, bad); err == nil {
			t.Errorf("Remove(%q) accepted", bad)
		}
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
	if err := s.Containers().Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Containers().Dir(c.ID), "upper", "b"), []byte("B\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Status = "running"
	if err := s.Containers().Save(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Containers().Commit(ctx, "box", ContainerCommit{}); err == nil || !strings.Contains(err.Error(), "container box is running") {
		t.Errorf("commit of a running container: %v", err)
	}
	c.Status = "exited"
	if err := s.Containers().Save(ctx, c); err != nil {
		t.Fatal(err)
	}
	nd, err := s.Containers().Commit(ctx, c.ID[:12], ContainerCommit{Author: "me", Message: "add b"})
	if err != nil {
		t.Fatal(err)
	}
	layers, cfg, err := s.Images().Layers(ctx, nd)
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 2 || layers[0] != base {
		t.Fatalf("layers %v: want the base's and one more", layers)
	}
	if b, err := os.ReadFile(filepath.Join(s.Layers().SnapshotDir(layers[1].DiffID), "b")); err != nil || string(b) != "B\n" {
		t.Errorf("the new layer's b: %q, %v", b, err)
	}
	h := cfg.History[len(cfg.History)-1]
	if h.CreatedBy != "[sh -c echo B > /b]" || h.Author != "me" || h.Comment != "add b" || cfg.Author != "me" || cfg.Created.IsZero() || !h.Created.Equal(cfg.Created.Time) {
		t.Errorf("config author %q created %v, history entry %+v", cfg.Author, cfg.Created, h)
	}
	// The container and its image are as they were.
	if old, _, err := s.Images().Layers(ctx, d); err != nil || len(old) != 1 {
		t.Errorf("the base image now has %d layers (%v)", len(old), err)
	}
	if _, err := os.Stat(filepath.Join(s.Containers().Dir(c.ID), "upper", "b")); err != nil {
		t.Errorf("the container's upper dir changed: %v", err)
	}
}
