package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/store"
)

func countEntries(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestPruneNeverRemovesWhatImagesAndContainersUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.extra = append(e.extra, "KILN_GC=0") // only explicit prunes here
	app := e.context(map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nRUN echo app > /app.txt\n"})
	scratch := e.context(map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nRUN head -c 300000 /dev/urandom > /junk\n"})
	ctr := e.context(map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nRUN echo ctr > /ctr.txt\n"})
	e.mustKiln("build", "--progress=plain", "-t", "app:1", "--build-arg", "BASE="+e.base, app)
	e.mustKiln("build", "--progress=plain", "--build-arg", "BASE="+e.base, scratch) // untagged: cache only
	e.mustKiln("build", "--progress=plain", "-t", "ctr:1", "--build-arg", "BASE="+e.base, ctr)
	e.mustKiln("run", "--name", "keep", "ctr:1", "cat", "/ctr.txt")
	e.mustKiln("rmi", "ctr:1") // now only the container holds ctr's image

	du := e.mustKiln("du")
	for _, want := range []string{"blobs", "snapshots", "cache records", "app:1", "Reclaimable"} {
		if !strings.Contains(du.stdout, want) {
			t.Errorf("du lacks %q:\n%s", want, du.stdout)
		}
	}
	snapsBefore := countEntries(t, filepath.Join(e.root, "snapshots"))

	// Default: the scratch build's records go (no image holds them), with
	// its snapshot; app's records stay, so app rebuilds fully cached.
	r := e.mustKiln("prune", "-f")
	if !strings.Contains(r.stdout, "Total reclaimed space") {
		t.Errorf("prune output:\n%s", r.stdout)
	}
	if n := countEntries(t, filepath.Join(e.root, "snapshots")); n != snapsBefore-1 {
		t.Errorf("snapshots %d -> %d, want one fewer", snapsBefore, n)
	}
	if b := e.mustKiln("build", "--progress=plain", "-t", "app:1", "--build-arg", "BASE="+e.base, app); strings.Contains(b.stderr, " DONE ") {
		t.Errorf("default prune dropped the cache of a named image:\n%s", b.stderr)
	}

	// --all: every record goes, but images and the container still work.
	e.mustKiln("prune", "--all", "-f")
	if n := countEntries(t, filepath.Join(e.root, "keys")); n != 0 {
		t.Errorf("%d records left after prune --all", n)
	}
	if r := e.mustKiln("run", "--rm", "app:1", "cat", "/app.txt"); r.stdout != "app\n" {
		t.Errorf("app:1 after prune --all: %q", r.stdout)
	}
	c, err := store.Open(e.root)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := c.Containers().Get(context.Background(), "keep")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Images().Get(context.Background(), ct.Digest); err != nil {
		t.Errorf("the container's image was collected: %v", err)
	}
	if _, _, err := c.Images().Layers(context.Background(), ct.Digest); err != nil {
		t.Errorf("the container's layers were collected: %v", err)
	}

	// Without the container, its image goes too.
	e.mustKiln("rm", "keep")
	e.mustKiln("rmi", "app:1")
	e.mustKiln("prune", "--all", "-f")
	// What is left is the pulled base, which its name still holds.
	if n := countEntries(t, filepath.Join(e.root, "snapshots")); n != 1 {
		t.Errorf("%d snapshots left, want the base's 1", n)
	}
	if r := e.mustKiln("run", "--rm", e.base, "true"); r.code != 0 {
		t.Errorf("base image broken after prune")
	}
}

func TestAutoGCAfterBuild(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := e.context(map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nRUN echo one > /one\n"})
	e.extra = append(e.extra, "KILN_GC_KEEP_DURATION=0s")
	r := e.mustKiln("build", "--progress=plain", "--build-arg", "BASE="+e.base, dir)
	if !strings.Contains(r.stderr, "gc: removed") {
		t.Errorf("no automatic GC with a zero keep duration:\n%s", r.stderr)
	}
	if n := countEntries(t, filepath.Join(e.root, "keys")); n != 0 {
		t.Errorf("%d records left", n)
	}
	e.extra = append(e.extra, "KILN_GC=0")
	r = e.mustKiln("build", "--progress=plain", "-t", "kept", "--build-arg", "BASE="+e.base, dir)
	if strings.Contains(r.stderr, "gc:") || countEntries(t, filepath.Join(e.root, "keys")) == 0 {
		t.Errorf("GC ran though KILN_GC=0:\n%s", r.stderr)
	}
	// With the defaults nothing this fresh is collected.
	e.extra = nil
	r = e.mustKiln("build", "--progress=plain", "-t", "kept", "--build-arg", "BASE="+e.base, dir)
	if strings.Contains(r.stderr, "gc:") || strings.Contains(r.stderr, " DONE ") {
		t.Errorf("default GC collected fresh cache:\n%s", r.stderr)
	}
}

func TestPruneWaitsForRunningBuilds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s, err := store.Open(e.root)
	if err != nil {
		t.Fatal(err)
	}
	build, err := s.GC().LockShared(context.Background()) // as a running build does
	if err != nil {
		t.Fatal(err)
	}
	cmd := e.command(context.Background(), "prune", "--all", "-f")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("prune ran during a build: %v\n%s", err, out.String())
	case <-time.After(500 * time.Millisecond):
	}
	build.Unlock()
	select {
	case err := <-done:
		if err != nil || !strings.Contains(out.String(), "waiting for running builds") {
			t.Errorf("prune: %v\n%s", err, out.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("prune did not proceed after the build ended")
	}
}
