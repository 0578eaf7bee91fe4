//go:build linux

package main

import (
	"fmt"
	"io"
	"io/fs"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/kiln-build/kiln/internal/testregistry"
)

// cacheRegistry is an in-process registry for one test's cache, which
// records the requests it answers.
type cacheRegistry struct {
	host string
	mu   sync.Mutex
	reqs []string // "METHOD /v2/..."
}

func newCacheRegistry(t *testing.T) *cacheRegistry {
	t.Helper()
	c := &cacheRegistry{}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.reqs = append(c.reqs, r.Method+" "+r.URL.Path)
		c.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.host = strings.TrimPrefix(srv.URL, "http://")
	return c
}

// take returns the requests since the last take and forgets them.
func (c *cacheRegistry) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.reqs
	c.reqs = nil
	return r
}

func matching(reqs []string, re string) []string {
	var out []string
	for _, r := range reqs {
		if regexp.MustCompile(re).MatchString(r) {
			out = append(out, r)
		}
	}
	return out
}

var stepsRun = regexp.MustCompile(`build finished in [0-9.]+s: (\d+) steps run`)

// ran is how many steps a plain-progress build ran.
func ran(t *testing.T, stderr string) string {
	t.Helper()
	m := stepsRun.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no summary in:\n%s", stderr)
	}
	return m[1]
}

// cacheApp is a two-stage Dockerfile: a deps stage the final stage copies
// from, a context file, and a RUN with a cache mount that records what it
// finds in the mount.
const cacheApp = `ARG BASE
FROM $BASE AS deps
RUN echo deps > /deps && head -c 100000 /dev/urandom > /deps-blob
FROM $BASE
COPY --from=deps /deps /deps
COPY app.txt /app.txt
RUN --mount=type=cache,target=/cache,id=app-cache sh -c 'cat /cache/log > /seen 2>/dev/null; echo "$(cat /app.txt)" >> /cache/log; cat /deps /app.txt > /out'
`

// Machine A builds and exports (mode=max); machine B, an empty store with
// the same sources in another directory, imports: it runs no step, makes
// the same layers, and downloads only the final stage's layers. An
// unchanged re-export uploads nothing; a change on machine C is explained
// against A's export, and C's RUN finds A's cache mount content.
func TestRemoteCacheAcrossMachines(t *testing.T) {
	t.Parallel()
	a := newEnv(t)
	b := envAt(t, t.TempDir())
	c := envAt(t, t.TempDir())
	reg := newCacheRegistry(t)
	ref := reg.host + "/app/cache:main"
	src := map[string]string{"Dockerfile": cacheApp, "app.txt": "v1"}
	build := func(e *env, dir string, args ...string) result {
		t.Helper()
		return e.mustKiln(append([]string{"build", "--progress=plain", "-t", "app:1", "--build-arg", "BASE=" + e.base}, append(args, dir)...)...)
	}

	ra := build(a, a.context(src), "--cache-to", "type=registry,ref="+ref+",mode=max,cache-mounts=true")
	if !strings.Contains(ra.stderr, "exporting cache to "+ref+" (mode=max): 4 keys, 0 already there") {
		t.Fatalf("export of a cold build:\n%s", ra.stderr)
	}
	reqs := reg.take()
	if n := len(matching(reqs, `^(PUT|PATCH|POST) /v2/.*/blobs/`)); n == 0 {
		t.Fatalf("the export uploaded no blob: %v", reqs)
	}
	// Unchanged: one listing, no upload, no HEAD per blob.
	ra = build(a, a.context(src), "--cache-to", "type=registry,ref="+ref+",mode=max")
	reqs = reg.take()
	if w := matching(reqs, `^(PUT|PATCH|POST) `); len(w) != 0 || !strings.Contains(ra.stderr, "4 keys, 4 already there") {
		t.Errorf("re-export of an unchanged build wrote %v\n%s", w, ra.stderr)
	}
	if len(reqs) > 2 {
		t.Errorf("re-export of an unchanged build took %d requests: %v", len(reqs), reqs)
	}

	// B's checkout has another owner, as on another CI runner: COPY gives
	// the files 0:0 either way, so its keys are A's.
	dirB := b.context(src)
	if err := filepath.WalkDir(dirB, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, 1001, 1001)
	}); err != nil {
		t.Fatal(err)
	}
	rb := build(b, dirB, "--cache-from", "type=registry,ref="+ref)
	if n := ran(t, rb.stderr); n != "0" {
		t.Errorf("machine B ran %s steps, want 0:\n%s", n, rb.stderr)
	}
	if strings.Contains(rb.stderr, "[deps") {
		t.Errorf("machine B touched the deps stage although the final step hit:\n%s", rb.stderr)
	}
	da, db := configOf(t, a.image("app:1")).RootFS.DiffIDs, configOf(t, b.image("app:1")).RootFS.DiffIDs
	if fmt.Sprint(da) != fmt.Sprint(db) {
		t.Errorf("diffIDs differ:\nA %v\nB %v", da, db)
	}
	reqs = reg.take()
	// Metadata only: one listing, the final key's manifest and config. The
	// three layers of the final stage are recorded lazily (the base is B's
	// already): nothing asked for their content yet.
	gets := matching(reqs, `^GET /v2/.*/blobs/`)
	if len(gets) != 1 {
		t.Errorf("machine B read %d blobs, want only the entry's config: %v", len(gets), reqs)
	}
	if m := matching(reqs, `^GET /v2/.*/manifests/`); len(m) != 1 {
		t.Errorf("machine B read %d manifests, want 1: %v", len(m), m)
	}
	if chk := b.mustKiln("store", "check"); strings.TrimSpace(chk.stdout) != "store is consistent" {
		t.Errorf("store check of lazy layers:\n%s", chk.stdout)
	}
	// kiln run needs the content: the three layers are fetched, once.
	if out := b.mustKiln("run", "--rm", "app:1", "cat", "/out"); out.stdout != "deps\nv1" {
		t.Errorf("B's run: /out = %q", out.stdout)
	}
	if gets := matching(reg.take(), `^GET /v2/.*/blobs/`); len(gets) != 3 {
		t.Errorf("kiln run of lazy layers read %d blobs, want the 3 layers: %v", len(gets), gets)
	}
	if got := files(t, b.image("app:1"))["/out"].data; got != "deps\nv1" {
		t.Errorf("B's /out = %q", got)
	}
	if gets := matching(reg.take(), `^GET /v2/.*/blobs/`); len(gets) != 0 {
		t.Errorf("reading fetched layers again read %d blobs: %v", len(gets), gets)
	}

	// Machine C changes app.txt: the COPY and the RUN miss, and say why
	// against the entries A exported; the RUN finds A's cache mount.
	src["app.txt"] = "v2"
	rc := build(c, c.context(src), "--explain-cache", "--cache-from", "type=registry,ref="+ref)
	for _, want := range []string{
		"remote cache: no imported entry for its key; the last export of step [stage-1 3] differs: context files modified: app.txt",
		"the last export of step [stage-1 4] differs: input changed: [stage-1 3/4] COPY app.txt /app.txt",
	} {
		if !strings.Contains(rc.stderr, want) {
			t.Errorf("explain on machine C lacks %q:\n%s", want, rc.stderr)
		}
	}
	if n := ran(t, rc.stderr); n != "2" {
		t.Errorf("machine C ran %s steps, want the COPY and the RUN:\n%s", n, rc.stderr)
	}
	if got := files(t, c.image("app:1"))["/seen"].data; got != "v1\n" {
		t.Errorf("the cache mount on C held %q, want what A's RUN wrote", got)
	}
}

// Two branches (Dockerfiles sharing a prefix) export to one reference at
// the same time; a third empty store then hits every step of both.
func TestRemoteCacheConcurrentBranches(t *testing.T) {
	t.Parallel()
	reg := newCacheRegistry(t)
	ref := reg.host + "/app/cache:ci"
	df := func(branch string) string {
		return "ARG BASE\nFROM $BASE\nRUN echo shared > /shared\nRUN echo " + branch + " > /branch\nRUN cat /shared /branch > /both\n"
	}
	var wg sync.WaitGroup
	for _, br := range []string{"main", "feature"} {
		e := envAt(t, t.TempDir())
		dir := e.context(map[string]string{"Dockerfile": df(br)})
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := e.run("", "build", "--progress=plain", "--build-arg", "BASE="+e.base, "--cache-to", "type=registry,ref="+ref+",mode=max,ignore-error=false", dir)
			if err != nil || r.code != 0 {
				t.Errorf("branch %s: %v exit %d\n%s", br, err, r.code, r.stderr)
			}
		}()
	}
	wg.Wait()
	third := envAt(t, t.TempDir())
	for _, br := range []string{"main", "feature"} {
		r := third.mustKiln("build", "--progress=plain", "--build-arg", "BASE="+third.base, "--cache-from", "type=registry,ref="+ref,
			third.context(map[string]string{"Dockerfile": df(br)}))
		if n := ran(t, r.stderr); n != "0" {
			t.Errorf("branch %s on a third store ran %s steps, want 0:\n%s", br, n, r.stderr)
		}
	}
}

// type=local: an OCI layout directory, written by one store, read by
// another; a second cache source is tried when the first lacks the key.
func TestRemoteCacheLocal(t *testing.T) {
	t.Parallel()
	a := newEnv(t)
	b := envAt(t, t.TempDir())
	dir := filepath.Join(t.TempDir(), "cache")
	empty := t.TempDir()
	src := map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nCOPY f /f\nRUN cat /f > /g\n", "f": "local"}
	a.mustKiln("build", "--progress=plain", "--build-arg", "BASE="+a.base, "--cache-to", "type=local,dest="+dir+",compression=zstd", a.context(src))
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
		t.Fatalf("no OCI layout written: %v", err)
	}
	// The layers built here went in as zstd (compression=zstd), the base's
	// as they came.
	if out, err := exec.Command("grep", "-rl", "tar+zstd", filepath.Join(dir, "blobs")).Output(); err != nil || len(out) == 0 {
		t.Errorf("no entry names a zstd layer: %v", err)
	}
	r := b.mustKiln("build", "--progress=plain", "-t", "l:1", "--build-arg", "BASE="+b.base,
		"--cache-from", "type=local,src="+empty, "--cache-from", "type=local,src="+dir, b.context(src))
	if n := ran(t, r.stderr); n != "0" {
		t.Errorf("import from a local cache ran %s steps:\n%s", n, r.stderr)
	}
	if got := files(t, b.image("l:1"))["/g"].data; got != "local" {
		t.Errorf("/g = %q", got)
	}
}

// The cache in Debian's docker-registry (distribution) behind htpasswd
// auth, with the credentials in $DOCKER_CONFIG/config.json.
func TestRemoteCacheAuthenticatedRegistry(t *testing.T) {
	t.Parallel()
	a := newEnv(t)
	reg := testregistry.Start(t, testregistry.Options{User: "ci", Password: "s3cret"})
	b := envAt(t, t.TempDir())
	ref := reg.Host + "/team/app:buildcache"
	src := map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nRUN echo authed > /a\n"}
	// Without credentials: the export fails, as it was asked to.
	r := a.kiln("", "build", "--progress=plain", "--build-arg", "BASE="+a.base, "--cache-to", "type=registry,ref="+ref+",ignore-error=false", a.context(src))
	if r.code == 0 {
		t.Fatalf("export without credentials succeeded:\n%s", r.stderr)
	}
	// By default a cache never fails a build: it warns.
	r = a.kiln("", "build", "--progress=plain", "--build-arg", "BASE="+a.base, "--cache-from", "type=registry,ref="+ref,
		"--cache-to", "type=registry,ref="+ref, a.context(src))
	if r.code != 0 || !strings.Contains(r.stderr, "warning: cannot read the build cache "+ref) || !strings.Contains(r.stderr, "warning: cache export to "+ref+" failed") {
		t.Errorf("a cache without credentials: exit %d\n%s", r.code, r.stderr)
	}
	for _, e := range []*env{a, b} {
		cfg := t.TempDir()
		reg.AuthFile(t, cfg)
		e.extra = append(e.extra, "DOCKER_CONFIG="+cfg)
	}
	a.mustKiln("build", "--progress=plain", "--build-arg", "BASE="+a.base, "--cache-to", "type=registry,ref="+ref+",mode=max,ignore-error=false", a.context(src))
	r = b.mustKiln("build", "--progress=plain", "--build-arg", "BASE="+b.base, "--cache-from", "type=registry,ref="+ref, b.context(src))
	if n := ran(t, r.stderr); n != "0" {
		t.Errorf("import from docker-registry ran %s steps:\n%s", n, r.stderr)
	}
}

// Two builds on one empty store import the same entry at once: the
// key's lock makes each layer come down once.
func TestRemoteCacheConcurrentImportsFetchOnce(t *testing.T) {
	t.Parallel()
	a := newEnv(t)
	b := envAt(t, t.TempDir())
	reg := newCacheRegistry(t)
	ref := reg.host + "/app/cache:once"
	src := map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nRUN head -c 200000 /dev/urandom > /r\nRUN echo two > /two\n"}
	a.mustKiln("build", "--progress=plain", "--build-arg", "BASE="+a.base, "--cache-to", "type=registry,ref="+ref+",mode=max", a.context(src))
	reg.take()
	var wg sync.WaitGroup
	res := make([]result, 2)
	for i := range res {
		dir := b.context(src)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := b.run("", "build", "--progress=plain", "-t", "once", "--build-arg", "BASE="+b.base, "--cache-from", "type=registry,ref="+ref, dir)
			if err != nil {
				t.Error(err)
			}
			res[i] = r
		}()
	}
	wg.Wait()
	for i, r := range res {
		if r.code != 0 || ran(t, r.stderr) != "0" {
			t.Errorf("build %d: exit %d\n%s", i, r.code, r.stderr)
		}
	}
	count := map[string]int{}
	for _, g := range matching(reg.take(), `^GET /v2/.*/blobs/`) {
		count[g]++
	}
	// The entry's config is read by each build that got to ask the
	// registry (one or both); the two step layers are lazy: not read.
	if len(count) != 1 {
		t.Errorf("blob reads %v: want only the entry's config (by one or both builds)", count)
	}
	// Two runs at once need the layers' content: each comes down once.
	res = make([]result, 2)
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := b.run("", "run", "--rm", "once", "cat", "/two")
			if err != nil {
				t.Error(err)
			}
			res[i] = r
		}()
	}
	wg.Wait()
	for i, r := range res {
		if r.code != 0 || r.stdout != "two\n" {
			t.Errorf("run %d: exit %d, stdout %q\n%s", i, r.code, r.stdout, r.stderr)
		}
	}
	count = map[string]int{}
	for _, g := range matching(reg.take(), `^GET /v2/.*/blobs/`) {
		count[g]++
	}
	if len(count) != 2 || slices.ContainsFunc(slices.Collect(maps.Values(count)), func(n int) bool { return n != 1 }) {
		t.Errorf("blob reads by two concurrent runs %v: want the two step layers once each", count)
	}
}
