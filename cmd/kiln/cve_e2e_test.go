package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Regression tests for the RUN --mount escapes published against buildah
// and BuildKit, re-authored as kiln builds. Each names its CVE and checks
// the host.

// buildah CVE-2024-1753: a writable bind of another image's root wrote to
// the host's / (RUN --mount=type=bind,from=base,source=/,rw). The write
// lands in a throwaway layer: not on the host, not in the base's snapshot,
// not in the image.
func TestCVE_2024_1753_BindFromImageRW(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	marker := "BIND_BREAKOUT_" + filepath.Base(t.TempDir())
	dir := e.context(map[string]string{"Dockerfile": `ARG BASE
FROM $BASE AS base
FROM $BASE
RUN --mount=type=bind,from=base,source=/,target=/rootdir,rw touch /rootdir/` + marker + ` /rootdir/etc/` + marker + `
RUN --mount=type=bind,from=base,source=/etc,target=/etcdir,rw touch /etcdir/` + marker + `
`})
	e.mustKiln("build", "--build-arg", "BASE="+e.base, "-t", "bindrw", dir)
	for _, p := range []string{"/" + marker, "/etc/" + marker} {
		if _, err := os.Lstat(p); err == nil {
			os.Remove(p)
			t.Fatalf("the build wrote %s on the host", p)
		}
	}
	for p := range files(t, e.image("bindrw")) {
		if strings.Contains(p, marker) {
			t.Errorf("the image holds %s, written through a rw bind", p)
		}
	}
	found := ""
	filepath.WalkDir(e.root, func(p string, d os.DirEntry, err error) error { //nolint:errcheck
		if err == nil && strings.Contains(d.Name(), marker) {
			found = p
		}
		return nil
	})
	if found != "" {
		t.Errorf("the write through a rw bind is in the store: %s", found)
	}
}

// buildah CVE-2024-9675: a cache mount's id (and source) were joined to
// the cache directory as a path, so `id=../../..` mounted a host
// directory. Ids are names, and source stays inside the cache.
func TestCVE_2024_9675_CacheMountIDTraversal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "HOST-CANARY"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	up := strings.Repeat("../", 20)
	dir := e.context(map[string]string{"Dockerfile": `ARG BASE
FROM $BASE
RUN --mount=type=cache,id=` + up + host + `,target=/c ls /c; touch /c/PWNED
RUN --mount=type=cache,id=x,target=/c mkdir -p /c/sub && ln -sfn ` + host + ` /c/out
RUN --mount=type=cache,id=x,source=out,target=/d ls /d; touch /d/PWNED2; true
`})
	r := e.kiln("", "build", "--progress=plain", "--build-arg", "BASE="+e.base, dir)
	if strings.Contains(r.stdout+r.stderr, "HOST-CANARY") {
		t.Errorf("a cache mount showed a host directory:\n%s", r.stderr)
	}
	for _, f := range []string{"PWNED", "PWNED2"} {
		if _, err := os.Stat(filepath.Join(host, f)); err == nil {
			t.Errorf("a cache mount wrote %s into a host directory", f)
		}
	}
}

// buildah CVE-2024-11218 (GHSA-5vpc-35f4-r8w6): changes made through a
// writable bind of the build context reached the host. They are
// discarded, even with several stages binding the context at once.
func TestCVE_2024_11218_BindContextRWDiscarded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := e.context(map[string]string{"Dockerfile": `ARG BASE
FROM $BASE AS a
RUN --mount=type=bind,target=/ctx,rw sh -c 'echo changed > /ctx/file; touch /ctx/new-a; rm -f /ctx/Dockerfile'
FROM $BASE AS b
RUN --mount=type=bind,target=/ctx,rw sh -c 'echo changed > /ctx/file; touch /ctx/new-b'
FROM $BASE
COPY --from=a /etc/passwd /a
COPY --from=b /etc/passwd /b
`, "file": "original\n"})
	e.mustKiln("build", "--jobs", "2", "--build-arg", "BASE="+e.base, dir)
	if b, _ := os.ReadFile(filepath.Join(dir, "file")); string(b) != "original\n" {
		t.Errorf("the context file was changed through a rw bind: %q", b)
	}
	for _, f := range []string{"new-a", "new-b"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("a rw bind created %s in the context", f)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "Dockerfile")); err != nil {
		t.Errorf("a rw bind deleted the context's Dockerfile: %v", err)
	}
}

// BuildKit CVE-2024-23653: a path (its interactive container API) skipped
// the security.insecure entitlement check. kiln has no such API and no
// entitlements: RUN --security=insecure is refused before any step runs,
// and nothing in the seccomp-confined, capability-limited sandbox can
// mount or create a user namespace.
func TestCVE_2024_23653_NoInsecureSandbox(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := e.context(map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nRUN --security=insecure touch /x\n"})
	r := e.kiln("", "build", "--build-arg", "BASE="+e.base, dir)
	if r.code == 0 || !strings.Contains(r.stderr, "insecure") {
		t.Errorf("RUN --security=insecure: exit %d\n%s", r.code, r.stderr)
	}
	dir = e.context(map[string]string{"Dockerfile": `ARG BASE
FROM $BASE
RUN mkdir /m; mount -t tmpfs none /m && echo MOUNTED; unshare -U true && echo USERNS; unshare -m true && echo MNTNS; true
`})
	r = e.mustKiln("build", "--progress=plain", "--no-cache", "--build-arg", "BASE="+e.base, dir)
	for _, w := range []string{"MOUNTED", "USERNS", "MNTNS"} {
		if strings.Contains(r.stderr, " "+w+"\n") {
			t.Errorf("a RUN step could %s:\n%s", w, r.stderr)
		}
	}
}
