package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/testregistry"
)

// TestRegistryFaultsPull: 500s, a 429 with Retry-After, a reset and a
// stall in the middle of a layer are retried and the pull succeeds; a
// registry that keeps failing gives a clear error and leaves the store
// without a partial blob.
func TestRegistryFaultsPull(t *testing.T) {
	t.Parallel()
	e, _ := registryEnv(t)
	reg := testregistry.Start(t, testregistry.Options{})
	img := seedBase(t, e, reg, reg.Host+"/flaky/base:1")
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	layer, err := ls[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	p := testregistry.StartProxy(t, reg)
	ref := p.Host + "/flaky/base:1"
	blob := "/blobs/" + layer.String()

	for _, tc := range []struct {
		name  string
		rules []testregistry.Rule
	}{
		{"5xx and 429", []testregistry.Rule{
			{Path: "/manifests/", Status: http.StatusInternalServerError, Times: 2},
			{Method: http.MethodGet, Path: blob, Status: http.StatusTooManyRequests, RetryAfter: 1, Times: 1},
			{Method: http.MethodGet, Path: blob, Status: http.StatusBadGateway, Times: 1},
		}},
		{"reset mid-blob", []testregistry.Rule{{Method: http.MethodGet, Path: blob, Reset: true, Times: 2}}},
		{"stall mid-blob", []testregistry.Rule{{Method: http.MethodGet, Path: blob, Stall: 30 * time.Second, Times: 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.Clear()
			for _, r := range tc.rules {
				p.Add(r)
			}
			before := p.Requests(http.MethodGet, blob)
			f := envAt(t, t.TempDir())
			f.extra = append(append([]string{}, e.extra...), "KILN_REGISTRY_TIMEOUT=2s")
			r := f.mustKiln("pull", "--progress=plain", ref)
			if !strings.Contains(r.stdout, "Digest: ") {
				t.Errorf("pull printed %q", r.stdout)
			}
			if n := p.Requests(http.MethodGet, blob) - before; n < 2 {
				t.Errorf("the layer was fetched %d times: the fault was not met", n)
			}
			if r := f.kiln("", "store", "check"); r.code != 0 {
				t.Errorf("store check after a retried pull: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
		})
	}

	t.Run("permanent failure", func(t *testing.T) {
		p.Clear()
		p.Add(testregistry.Rule{Method: http.MethodGet, Path: blob, Status: http.StatusServiceUnavailable})
		f := envAt(t, t.TempDir())
		f.extra = append(append([]string{}, e.extra...), "KILN_REGISTRY_RETRIES=2")
		r := f.kiln("", "pull", ref)
		mustFail(t, r, exitRegistry, "registry "+p.Host, ref, "503")
		if _, err := os.Stat(filepath.Join(f.root, "blobs", "sha256", layer.Hex)); err == nil {
			t.Error("the failed layer's blob is in the store")
		}
		if r := f.kiln("", "store", "check"); r.code != 0 {
			t.Errorf("store check after a failed pull: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if out := f.mustKiln("images", "-q").stdout; strings.TrimSpace(out) != "" {
			t.Errorf("a failed pull left an image: %q", out)
		}
		p.Clear()
		r = f.kiln("", "pull", ref)
		if r.code != 0 {
			t.Fatalf("pull once the registry is well again: exit %d\n%s", r.code, r.stderr)
		}
	})
}

// TestRegistryFaultsPush: failing upload requests are retried; a second
// push of the same image uploads nothing, and a push to another repository
// of the registry mounts the blobs instead of uploading them.
func TestRegistryFaultsPush(t *testing.T) {
	t.Parallel()
	e, _ := registryEnv(t)
	reg := testregistry.Start(t, testregistry.Options{})
	p := testregistry.StartProxy(t, reg)
	ctxDir := e.context(map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nRUN echo layer > /pushed\n"})
	e.mustKiln("build", "--progress=plain", "--build-arg", "BASE="+e.base, "-t", "topush", ctxDir)

	p.Add(testregistry.Rule{Method: http.MethodPost, Path: "/blobs/uploads/", Status: http.StatusInternalServerError, Times: 2})
	p.Add(testregistry.Rule{Method: http.MethodPut, Path: "/manifests/", Status: http.StatusTooManyRequests, RetryAfter: 1, Times: 1})
	r := e.mustKiln("push", "--progress=plain", "topush", p.Host+"/team/app:1")
	if !strings.Contains(r.stdout, "digest: sha256:") {
		t.Fatalf("push printed %q", r.stdout)
	}
	p.Clear()

	uploads := func(repo string) int {
		return p.Requests(http.MethodPatch, "/v2/"+repo+"/blobs/uploads/") + p.Requests(http.MethodPut, "/v2/"+repo+"/blobs/uploads/")
	}
	before := uploads("team/app")
	e.mustKiln("push", "topush", p.Host+"/team/app:2")
	if n := uploads("team/app") - before; n != 0 {
		t.Errorf("a second push to the same repository uploaded %d blobs", n)
	}
	e.mustKiln("push", "topush", p.Host+"/other/app:1")
	if n := uploads("other/app"); n != 0 {
		t.Errorf("a push to another repository uploaded %d blobs instead of mounting them", n)
	}
	if p.Requests(http.MethodPost, "/v2/other/app/blobs/uploads/?from=team%2Fapp&mount=") < 2 {
		t.Error("no cross-repository mount was asked for")
	}
	// A built image's base layers are mounted from the repository its base
	// was pulled from.
	seedBase(t, e, reg, reg.Host+"/lib/base:1")
	baseDir := e.context(map[string]string{"Dockerfile": "FROM " + p.Host + "/lib/base:1\nRUN echo on-top > /top\n"})
	e.mustKiln("build", "--progress=plain", "-t", "onbase", baseDir)
	e.mustKiln("push", "onbase", p.Host+"/team2/app:1")
	if n := p.Requests(http.MethodPost, "/v2/team2/app/blobs/uploads/?from=lib%2Fbase&mount="); n < 1 {
		t.Error("the base layer was not mounted from lib/base")
	}
	if n := uploads("team2/app"); n > 4 {
		t.Errorf("%d blob uploads for one new layer and a config", n)
	}
	// build --push too; each base layer is asked of the repository known
	// to hold it (lib/base), not of the image's own last push.
	e.mustKiln("build", "--progress=plain", "-t", p.Host+"/team3/app:1", "--push", baseDir)
	if n := p.Requests(http.MethodPost, "/v2/team3/app/blobs/uploads/?from=lib%2Fbase&mount="); n < 1 {
		t.Error("build --push did not mount the base layer from lib/base")
	}

	// What was mounted is whole: a fresh store pulls it from there.
	f := envAt(t, t.TempDir())
	f.extra = e.extra
	f.mustKiln("pull", reg.Host+"/other/app:1")
	f.mustKiln("pull", reg.Host+"/team2/app:1")
	if r := f.kiln("", "store", "check"); r.code != 0 {
		t.Errorf("store check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
