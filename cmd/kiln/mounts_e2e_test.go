package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunMounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	secretFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(secretFile, []byte("s3cr3t-value"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := e.context(map[string]string{
		"Dockerfile": `ARG BASE
FROM $BASE AS tools
RUN mkdir -p /opt/tool && echo "tool v1" > /opt/tool/VERSION

FROM $BASE
WORKDIR /work
RUN --mount=type=cache,target=/cache echo run >> /cache/runs && wc -l < /cache/runs > /work/runs-seen
RUN --mount=type=bind,source=conf,target=/mnt/conf cat /mnt/conf/app.conf > /work/conf-copy
RUN --mount=type=bind,source=conf,target=/mnt/conf,rw echo scribble > /mnt/conf/new && cat /mnt/conf/new > /work/rw-seen
RUN --mount=type=bind,from=tools,source=/opt/tool,target=/tool cat /tool/VERSION > /work/tool-version
RUN --mount=type=tmpfs,target=/scratch echo t > /scratch/x && ls /scratch > /work/tmpfs-seen
RUN --mount=type=secret,id=token cat /run/secrets/token 2>/dev/null | wc -c > /work/secret-len
RUN --mount=type=secret,id=token,env=TOKEN,required echo "${#TOKEN}" > /work/secret-env
`,
		"conf/app.conf": "setting=1\n",
	})
	build := func(extra ...string) result {
		t.Helper()
		args := append([]string{"build", "--progress=plain", "-t", "mounts", "--build-arg", "BASE=" + e.base, "--secret", "id=token,src=" + secretFile}, extra...)
		return e.mustKiln(append(args, dir)...)
	}
	r := build()
	if strings.Contains(r.stderr, "s3cr3t-value") {
		t.Errorf("the secret's value reached the build output")
	}
	fs := files(t, e.image("mounts"))
	want := map[string]string{
		"/work/runs-seen":    "1\n",
		"/work/conf-copy":    "setting=1\n",
		"/work/rw-seen":      "scribble\n",
		"/work/tool-version": "tool v1\n",
		"/work/tmpfs-seen":   "x\n",
		"/work/secret-len":   "12\n",
		"/work/secret-env":   "12\n",
	}
	for p, w := range want {
		if got := fs[p].data; got != w {
			t.Errorf("%s = %q, want %q", p, got, w)
		}
	}
	for p, f := range fs {
		if strings.HasPrefix(p, "/cache/") || strings.HasPrefix(p, "/scratch/") || strings.HasPrefix(p, "/mnt/conf/") || p == "/run/secrets/token" || p == "/tool/VERSION" {
			t.Errorf("mounted content leaked into the image: %s", p)
		}
		if strings.Contains(f.data, "s3cr3t-value") {
			t.Errorf("the secret's value is in the image at %s", p)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "conf", "new")); err == nil {
		t.Error("a rw bind mount wrote into the build context")
	}
	// The cache mount persists across builds, even uncached ones.
	build("--no-cache")
	if got := files(t, e.image("mounts"))["/work/runs-seen"].data; got != "2\n" {
		t.Errorf("cache mount did not persist: runs-seen %q", got)
	}
	// A changed secret value does not bust the cache.
	if err := os.WriteFile(secretFile, []byte("other-value!"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := build(); strings.Count(r.stderr, " DONE ") != 0 {
		t.Errorf("a new secret value re-ran steps:\n%s", r.stderr)
	}
	// A required secret that is missing fails with a clear message.
	r2 := e.kiln("", "build", "--no-cache", "--build-arg", "BASE="+e.base, dir)
	if r2.code == 0 || !strings.Contains(r2.stderr, `secret "token" is required`) {
		t.Errorf("missing required secret: exit %d\n%s", r2.code, r2.stderr)
	}
}
