package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExplainCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := e.context(map[string]string{
		"Dockerfile": "ARG BASE\nFROM $BASE\nARG V=1\nCOPY src/ /src/\nRUN echo $V > /v\n",
		"src/a":      "a",
		"src/b":      "b",
	})
	// A base of our own, so that replacing it later affects no other test.
	base := e.reg + "/explain/base:1"
	e.mustKiln("build", "--output", "type=registry,name="+base, "--build-arg", "BASE="+e.base,
		e.context(map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nLABEL v=1\n"}))
	build := func(args ...string) string {
		t.Helper()
		r := e.mustKiln(append([]string{"build", "--progress=plain", "--explain-cache", "--build-arg", "BASE=" + base}, append(args, dir)...)...)
		return r.stderr
	}
	if out := build(); !strings.Contains(out, "cache miss: no earlier build of this step") {
		t.Errorf("first build:\n%s", out)
	}
	if out := build(); strings.Contains(out, "cache miss") {
		t.Errorf("a fully cached build explained a miss:\n%s", out)
	}
	if err := os.WriteFile(filepath.Join(dir, "src", "a"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "src", "b")); err != nil {
		t.Fatal(err)
	}
	out := build()
	for _, want := range []string{"context files modified: src/a", "context files removed: src/b", "input changed: [2/3] COPY src/ /src/"} {
		if !strings.Contains(out, want) {
			t.Errorf("after changing files, output lacks %q:\n%s", want, out)
		}
	}
	out = build("--build-arg", "V=2")
	if !strings.Contains(out, `env/arg V changed: "1" → "2"`) {
		t.Errorf("after changing a build arg:\n%s", out)
	}
	if strings.Count(out, "cache miss") != 1 {
		t.Errorf("a build arg change should miss only the RUN step:\n%s", out)
	}
	// A new base image under the same tag.
	e.mustKiln("build", "--output", "type=registry,name="+base, "--build-arg", "BASE="+e.base,
		e.context(map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nRUN touch /newbase\n"}))
	out = build("--build-arg", "V=2", "--pull=always")
	if !strings.Contains(out, "base image changed: sha256:") {
		t.Errorf("after a new base image:\n%s", out)
	}
	// The instruction's text.
	df := "ARG BASE\nFROM $BASE\nARG V=1\nCOPY src/ /src/\nRUN echo $V >> /v\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	out = build("--build-arg", "V=2")
	if !strings.Contains(out, `instruction changed: "RUN echo 2 > /v" → "RUN echo 2 >> /v"`) || strings.Count(out, "cache miss") != 1 {
		t.Errorf("after changing the RUN's text:\n%s", out)
	}
	// Another tag is another target: it compares with its own last build.
	if out := build("--build-arg", "V=3", "-t", "explain:other"); !strings.Contains(out, "cache miss: no earlier build of this step") || strings.Contains(out, "env/arg V") {
		t.Errorf("a new tag compared with another target's build:\n%s", out)
	}
}

func TestNoCacheFilter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := e.context(map[string]string{
		"Dockerfile": "ARG BASE\nFROM $BASE AS deps\nRUN echo deps > /deps\nFROM deps AS app\nRUN echo app > /app\n",
	})
	e.mustKiln("build", "--build-arg", "BASE="+e.base, dir)
	r := e.mustKiln("build", "--progress=plain", "--no-cache-filter", "APP", "--build-arg", "BASE="+e.base, dir)
	if strings.Count(r.stderr, " DONE ") != 1 || strings.Count(r.stderr, "CACHED") != 2 {
		t.Errorf("want 1 step run (app) and 2 cached (FROM, deps):\n%s", r.stderr)
	}
}
