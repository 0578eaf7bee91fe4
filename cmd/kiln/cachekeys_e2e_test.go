package main

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/kiln-build/kiln/internal/busybox"
)

var plainStep = regexp.MustCompile(`(?m)^#(\d+) (\[.*)$`)

// stepStatus maps each step's label ("[a 2/3] RUN ...") in --progress=plain
// output to how it ended: "CACHED", "DONE" or "ERROR".
func stepStatus(t *testing.T, out string) map[string]string {
	t.Helper()
	st := map[string]string{}
	for _, m := range plainStep.FindAllStringSubmatch(out, -1) {
		end := regexp.MustCompile(`(?m)^#` + m[1] + ` (CACHED|DONE|ERROR)`).FindStringSubmatch(out)
		if end == nil {
			t.Fatalf("step #%s %s has no end in:\n%s", m[1], m[2], out)
		}
		st[m[2]] = end[1]
	}
	return st
}

// wantStatus checks the steps whose label starts with each key.
func wantStatus(t *testing.T, out string, want map[string]string) {
	t.Helper()
	got := stepStatus(t, out)
	for prefix, w := range want {
		found := false
		for label, g := range got {
			if strings.HasPrefix(label, prefix) {
				found = true
				if g != w {
					t.Errorf("%s: %s, want %s", label, g, w)
				}
			}
		}
		if !found {
			t.Errorf("no step %q in:\n%s", prefix, out)
		}
	}
}

// A build arg change busts only the steps that can see it; proxy args and
// args no stage declares bust nothing.
func TestBuildArgScoping(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := e.context(map[string]string{
		"Dockerfile": `ARG BASE
FROM $BASE AS a
RUN echo a > /a
ARG V=1
RUN echo "v=$V" > /v
FROM $BASE AS b
RUN echo b > /b
FROM $BASE
COPY --from=b /b /b
COPY --from=a /v /v
`,
	})
	build := func(args ...string) string {
		t.Helper()
		r := e.mustKiln(append([]string{"build", "--progress=plain", "-t", "args", "--build-arg", "BASE=" + e.base}, append(args, dir)...)...)
		return r.stderr
	}
	first := build()
	wantStatus(t, first, map[string]string{"[a 2/3]": "DONE", "[a 3/3]": "DONE", "[b 2/2]": "DONE"})

	out := build("--build-arg", "V=2")
	wantStatus(t, out, map[string]string{
		"[a 2/3] RUN echo a":          "CACHED", // before ARG V: cannot see it
		"[a 3/3] RUN echo":            "DONE",
		"[b 2/2] RUN echo b":          "CACHED", // another stage, V not declared there
		"[stage-2 2/3] COPY --from=b": "CACHED",
		"[stage-2 3/3] COPY --from=a": "DONE", // its input changed
	})
	if got := files(t, e.image("args"))["/v"].data; got != "v=2\n" {
		t.Errorf("/v = %q", got)
	}

	// Back to V=2 each time: proxies and an unused arg change no key.
	for _, extra := range [][]string{
		{"--build-arg", "HTTP_PROXY=http://proxy.invalid:3128", "--build-arg", "no_proxy=example.com"},
		{"--build-arg", "UNUSED=whatever"},
	} {
		out := build(append([]string{"--build-arg", "V=2"}, extra...)...)
		for label, st := range stepStatus(t, out) {
			if st != "CACHED" {
				t.Errorf("%v: %s was %s, want CACHED\n%s", extra, label, st, out)
			}
		}
	}
}

// --pull: missing (the default) never asks the registry for a base the
// store has; always resolves the tag again and rebuilds on a new digest;
// never fails without a local copy.
func TestPullPolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var requests atomic.Int64
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	bb, err := busybox.Image("")
	if err != nil {
		t.Skipf("no busybox: %v", err)
	}
	push := func(version string) {
		t.Helper()
		cf, err := bb.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.Config.Labels = map[string]string{"base": version}
		img, err := mutate.ConfigFile(bb, cf)
		if err != nil {
			t.Fatal(err)
		}
		if err := busybox.Push(t.Context(), img, host+"/pull/base:latest"); err != nil {
			t.Fatal(err)
		}
	}
	push("1")
	dir := e.context(map[string]string{
		"Dockerfile": "FROM " + host + "/pull/base:latest\nRUN echo built > /built\n",
	})
	build := func(args ...string) (string, string) {
		t.Helper()
		r := e.mustKiln(append([]string{"build", "--progress=plain", "-t", "pulled"}, append(args, dir)...)...)
		return r.stderr, configOf(t, e.image("pulled")).Config.Labels["base"]
	}
	if _, label := build(); label != "1" {
		t.Fatalf("first build on base %q", label)
	}

	push("2")
	before := requests.Load()
	out, label := build()
	if n := requests.Load() - before; n != 0 {
		t.Errorf("--pull=missing (default) sent %d requests to the registry", n)
	}
	if label != "1" {
		t.Errorf("default build used base %q, want the stored 1", label)
	}
	wantStatus(t, out, map[string]string{"[2/2] RUN": "CACHED"})
	if _, label := build("--pull=never"); label != "1" || requests.Load() != before {
		t.Errorf("--pull=never: base %q, registry asked: %v", label, requests.Load() != before)
	}

	out, label = build("--pull=always")
	if requests.Load() == before {
		t.Error("--pull=always did not ask the registry")
	}
	if label != "2" {
		t.Errorf("--pull=always built on base %q, want the new 2", label)
	}
	wantStatus(t, out, map[string]string{"[2/2] RUN": "DONE"})
	// Unchanged tag: always asks, and everything is cached.
	out, _ = build("--pull=always")
	wantStatus(t, out, map[string]string{"[1/2] FROM": "CACHED", "[2/2] RUN": "CACHED"})

	r := e.kiln("", "build", "--pull=never", e.context(map[string]string{"Dockerfile": "FROM " + host + "/pull/other:latest\n"}))
	if r.code == 0 || !strings.Contains(r.stderr, "--pull=never") {
		t.Errorf("--pull=never with no local copy: exit %d\n%s", r.code, r.stderr)
	}
}
