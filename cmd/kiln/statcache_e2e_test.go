package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A file whose size and mtime stay the same while its bytes change must
// never give a stale result (moby/buildkit#4950).
func TestContentChangeWithSameSizeAndMtime(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := e.context(map[string]string{
		"Dockerfile": "ARG BASE\nFROM $BASE\nCOPY data.txt /data.txt\n",
		"data.txt":   "version-1",
	})
	p := filepath.Join(dir, "data.txt")
	stamp := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(p, stamp, stamp); err != nil {
		t.Fatal(err)
	}
	e.mustKiln("build", "-t", "sc", "--build-arg", "BASE="+e.base, dir)
	for i, content := range []string{"version-2", "version-3"} {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, stamp, stamp); err != nil {
			t.Fatal(err)
		}
		r := e.mustKiln("build", "--progress=plain", "-t", "sc", "--build-arg", "BASE="+e.base, dir)
		if got := files(t, e.image("sc"))["/data.txt"].data; got != content {
			t.Fatalf("round %d: image has %q, context has %q\n%s", i, got, content, r.stderr)
		}
	}
	// And unchanged, it is a cache hit.
	if r := e.mustKiln("build", "--progress=plain", "-t", "sc", "--build-arg", "BASE="+e.base, dir); strings.Contains(r.stderr, " DONE ") {
		t.Errorf("unchanged context re-ran a step:\n%s", r.stderr)
	}
}
