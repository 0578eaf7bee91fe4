package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/internal/testregistry"
)

// registryEnv is an env whose kiln processes find credentials and certs.d
// only under a home of their own.
func registryEnv(t *testing.T) (*env, string) {
	t.Helper()
	e := newEnv(t)
	home := t.TempDir()
	e.extra = append(e.extra, "HOME="+home, "DOCKER_CONFIG="+filepath.Join(home, ".docker"),
		"XDG_RUNTIME_DIR="+filepath.Join(home, "run"), "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"REGISTRY_AUTH_FILE=", "KILN_CERTS_D="+filepath.Join(home, "certs.d"))
	return e, home
}

// seedBase pushes the env's busybox base to ref (with r's credentials, if
// any, and trusting its CA).
func seedBase(t *testing.T, e *env, r *testregistry.Registry, ref string) v1.Image {
	t.Helper()
	e.mustKiln("pull", e.base)
	img := e.image(e.base)
	dst, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	opts := []remote.Option{remote.WithTransport(r.Client().Transport)}
	if r.User != "" {
		opts = append(opts, remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: r.User, Password: r.Password})))
	}
	if err := remote.Write(dst, img, opts...); err != nil {
		t.Fatalf("seeding %s: %v", ref, err)
	}
	return img
}

func mustFail(t *testing.T, r result, code int, wants ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, w := range wants {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr does not say %q:\n%s", w, r.stderr)
		}
	}
}

// TestRegistryLoginPullBuildPush is the CI job of issue 9 against a
// docker-registry with htpasswd: a private base fails with the login hint
// and exit code 3, a wrong password is refused, the right one is stored
// where docker stores it, then build, push and pull work; logout undoes it.
func TestRegistryLoginPullBuildPush(t *testing.T) {
	t.Parallel()
	e, home := registryEnv(t)
	reg := testregistry.Start(t, testregistry.Options{User: "ci", Password: "pa55word"})
	seedBase(t, e, reg, reg.Host+"/private/base:1")
	ctxDir := e.context(map[string]string{"Dockerfile": "FROM " + reg.Host + "/private/base:1\nRUN echo built > /built\nLABEL stage=ci\n"})

	r := e.kiln("", "build", "--progress=plain", "-t", "app", ctxDir)
	mustFail(t, r, exitRegistry, "kiln login "+reg.Host, reg.Host+"/private/base:1")

	r = e.kiln("wrong\n", "login", "-u", "ci", "--password-stdin", reg.Host)
	mustFail(t, r, exitRegistry, "kiln login "+reg.Host)
	cfgPath := filepath.Join(home, ".docker", "config.json")
	if b, err := os.ReadFile(cfgPath); err == nil && strings.Contains(string(b), reg.Host) {
		t.Fatalf("a refused login was stored: %s", b)
	}

	r = e.mustKiln("login", "-u", "ci", "-p", "pa55word", reg.Host)
	if !strings.Contains(r.stdout, "Login Succeeded") {
		t.Errorf("login printed %q", r.stdout)
	}
	var file struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	if got, want := file.Auths[reg.Host].Auth, base64.StdEncoding.EncodeToString([]byte("ci:pa55word")); got != want {
		t.Errorf("config.json auths[%s].auth = %q, want %q", reg.Host, got, want)
	}
	if fi, _ := os.Stat(cfgPath); fi.Mode().Perm() != 0o600 {
		t.Errorf("config.json mode %v, want 0600", fi.Mode().Perm())
	}

	e.mustKiln("build", "--progress=plain", "-t", "app", ctxDir)
	target := reg.Host + "/private/app:1"
	r = e.mustKiln("push", "--progress=plain", "app", target)
	prefix := target + ": digest: sha256:"
	if !strings.HasPrefix(r.stdout, prefix) || !strings.Contains(r.stdout, " size: ") {
		t.Fatalf("push printed %q, want %q...", r.stdout, prefix)
	}
	pushed := strings.Fields(strings.TrimPrefix(r.stdout, target+": digest: "))[0]
	if !strings.Contains(r.stderr, "push "+target) {
		t.Errorf("push showed no progress:\n%s", r.stderr)
	}

	// A real client sees what was pushed.
	if _, err := exec.LookPath("skopeo"); err == nil {
		out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--creds", "ci:pa55word", "docker://"+target).CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo inspect: %v\n%s", err, out)
		}
		var si struct {
			Digest string
			Labels map[string]string
		}
		if err := json.Unmarshal(out, &si); err != nil {
			t.Fatal(err)
		}
		if si.Digest != pushed || si.Labels["stage"] != "ci" {
			t.Errorf("skopeo sees digest %s labels %v, want %s and stage=ci", si.Digest, si.Labels, pushed)
		}
	}
	if crane, err := exec.LookPath("crane"); err == nil {
		if out, err := exec.Command(crane, "validate", "--insecure", "--remote", target).CombinedOutput(); err != nil {
			t.Errorf("crane validate: %v\n%s", err, out)
		}
	}

	// A second push of the same image uploads nothing; RepoDigests has it.
	r = e.mustKiln("push", "--progress=plain", "app", target)
	if !strings.Contains(r.stdout, pushed) {
		t.Errorf("second push printed %q, want digest %s", r.stdout, pushed)
	}
	var ii []struct{ RepoDigests []string }
	if err := json.Unmarshal([]byte(e.mustKiln("inspect", "app").stdout), &ii); err != nil {
		t.Fatal(err)
	}
	if len(ii) != 1 || !contains(ii[0].RepoDigests, reg.Host+"/private/app@"+pushed) {
		t.Errorf("RepoDigests %v, want %s", ii, reg.Host+"/private/app@"+pushed)
	}

	// A fresh store with the same credentials pulls it.
	e2 := envAt(t, t.TempDir())
	e2.extra = e.extra
	r = e2.mustKiln("pull", "--progress=plain", target)
	if !strings.Contains(r.stdout, pushed) {
		t.Errorf("pull printed %q, want digest %s", r.stdout, pushed)
	}

	e.mustKiln("logout", reg.Host)
	if b, _ := os.ReadFile(cfgPath); strings.Contains(string(b), reg.Host) {
		t.Errorf("logout left %s", b)
	}
	mustFail(t, e2.kiln("", "pull", target), exitRegistry, "kiln login "+reg.Host)
}

// TestRegistryPodmanAuthFile: credentials in REGISTRY_AUTH_FILE (podman's
// auth.json) are used, with docker's config.json absent.
func TestRegistryPodmanAuthFile(t *testing.T) {
	t.Parallel()
	e, home := registryEnv(t)
	reg := testregistry.Start(t, testregistry.Options{User: "pod", Password: "man"})
	seedBase(t, e, reg, reg.Host+"/base:1")
	mustFail(t, e.kiln("", "pull", reg.Host+"/base:1"), exitRegistry, "kiln login "+reg.Host)
	authFile := reg.AuthFile(t, t.TempDir())
	e.extra = append(e.extra, "REGISTRY_AUTH_FILE="+authFile)
	e.mustKiln("pull", reg.Host+"/base:1")
	// And $XDG_RUNTIME_DIR/containers/auth.json, podman's default.
	e3 := envAt(t, t.TempDir())
	e3.extra = append([]string{}, e.extra[:len(e.extra)-1]...)
	if err := os.MkdirAll(filepath.Join(home, "run", "containers"), 0o700); err != nil {
		t.Fatal(err)
	}
	reg.AuthFile(t, filepath.Join(home, "run", "containers"))
	if err := os.Rename(filepath.Join(home, "run", "containers", "config.json"), filepath.Join(home, "run", "containers", "auth.json")); err != nil {
		t.Fatal(err)
	}
	e3.mustKiln("pull", reg.Host+"/base:1")
}

// TestRegistryTLS: a TLS registry is trusted through a CA in certs.d, and
// refused without it.
func TestRegistryTLS(t *testing.T) {
	t.Parallel()
	e, home := registryEnv(t)
	reg := testregistry.Start(t, testregistry.Options{User: "tls", Password: "secret", TLS: true})
	seedBase(t, e, reg, reg.Host+"/base:1")
	e.mustKiln("tag", e.base, "local:1")

	mustFail(t, e.kiln("secret", "login", "-u", "tls", "--password-stdin", reg.Host), exitRegistry, "cannot reach registry "+reg.Host, "certs.d")

	// The CA goes where docker would have it: certs.d/HOST/ca.crt.
	if err := os.CopyFS(filepath.Join(home, "certs.d"), os.DirFS(reg.CertsDir)); err != nil {
		t.Fatal(err)
	}
	if r := e.kiln("secret", "login", "-u", "tls", "--password-stdin", reg.Host); r.code != 0 {
		t.Fatalf("login with the CA in certs.d: exit %d\n%s", r.code, r.stderr)
	}
	e.mustKiln("pull", reg.Host+"/base:1")
	r := e.mustKiln("push", "local:1", reg.Host+"/pushed:1")
	if !strings.Contains(r.stdout, "digest: sha256:") {
		t.Errorf("push printed %q", r.stdout)
	}
	if _, err := exec.LookPath("skopeo"); err == nil {
		out, err := exec.Command("skopeo", "inspect", "--cert-dir", filepath.Join(reg.CertsDir, reg.Host), "--creds", "tls:secret", "docker://"+reg.Host+"/pushed:1").CombinedOutput()
		if err != nil {
			t.Errorf("skopeo inspect over TLS: %v\n%s", err, out)
		}
	}
}

// TestRegistryMirror: docker.io's mirror from the store's config.json
// serves `kiln pull busybox` (there is no internet: only the mirror can).
func TestRegistryMirror(t *testing.T) {
	t.Parallel()
	e, _ := registryEnv(t)
	mirror := testregistry.Start(t, testregistry.Options{})
	want := seedBase(t, e, mirror, mirror.Host+"/library/busybox:latest")
	if err := os.WriteFile(filepath.Join(e.root, "config.json"), []byte(`{"registry":{"mirrors":{"docker.io":["127.0.0.1:1","`+mirror.Host+`"]}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.mustKiln("pull", "busybox")
	wd, _ := want.Digest()
	if !strings.Contains(r.stdout, wd.String()) || !strings.Contains(r.stdout, "docker.io/library/busybox:latest") {
		t.Errorf("pull printed %q, want %s as docker.io/library/busybox:latest", r.stdout, wd)
	}
	ctxDir := e.context(map[string]string{"Dockerfile": "FROM busybox\nRUN true\n"})
	e.mustKiln("build", "--progress=plain", "--pull=always", "-t", "frommirror", ctxDir)
}

// TestRegistryPlatformError: an index without the platform asked for
// names the ones it has.
func TestRegistryPlatformError(t *testing.T) {
	t.Parallel()
	e, _ := registryEnv(t)
	reg := testregistry.Start(t, testregistry.Options{})
	e.mustKiln("pull", e.base)
	img := e.image(e.base)
	idx := indexOf(t, img, v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, v1.Platform{OS: "linux", Architecture: "riscv64"})
	ref, _ := name.ParseReference(reg.Host+"/multi:1", name.Insecure)
	if err := remote.WriteIndex(ref, idx, remote.WithContext(context.Background())); err != nil {
		t.Fatal(err)
	}
	r := e.kiln("", "pull", "--platform", "linux/s390x", reg.Host+"/multi:1")
	mustFail(t, r, 1, "linux/arm64/v8", "linux/riscv64", "--platform")
	r = e.mustKiln("pull", "--platform", "linux/riscv64", reg.Host+"/multi:1")
	if d, _ := idx.Digest(); !strings.Contains(r.stdout, "Digest: ") {
		t.Errorf("pull printed %q (index %s)", r.stdout, d)
	}
	var ii []struct{ RepoDigests []string }
	if err := json.Unmarshal([]byte(e.mustKiln("inspect", reg.Host+"/multi:1").stdout), &ii); err != nil {
		t.Fatal(err)
	}
	// docker records the index's digest, the one `pull NAME@DIGEST` takes.
	if d, _ := idx.Digest(); len(ii) != 1 || !contains(ii[0].RepoDigests, reg.Host+"/multi@"+d.String()) {
		t.Errorf("RepoDigests %v, want the index digest %s", ii, d)
	}
	// A single image of another platform is pulled with podman's warning.
	single, _ := name.ParseReference(reg.Host+"/single:1", name.Insecure)
	if err := remote.Write(single, img, remote.WithContext(context.Background())); err != nil {
		t.Fatal(err)
	}
	r = e.mustKiln("pull", "--platform", "linux/riscv64", reg.Host+"/single:1")
	if !strings.Contains(r.stderr, "WARNING: image platform (linux/amd64) does not match the expected platform (linux/riscv64)") {
		t.Errorf("pull of a linux/amd64 image for linux/riscv64 said:\n%s", r.stderr)
	}
}

// indexOf is an index listing img once per platform.
func indexOf(t *testing.T, img v1.Image, platforms ...v1.Platform) v1.ImageIndex {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, p := range platforms {
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
}

// TestRegistryInsecure: a registry on a non-loopback address is not spoken
// to over plain HTTP unless --insecure-registry or the store's config.json
// lists it.
func TestRegistryInsecure(t *testing.T) {
	t.Parallel()
	ip := testregistry.NonLoopbackIP()
	if ip == "" {
		t.Skip("this machine has no non-loopback IPv4 address")
	}
	e, _ := registryEnv(t)
	reg := testregistry.Start(t, testregistry.Options{IP: ip})
	seedBase(t, e, reg, reg.Host+"/base:1")
	ref := reg.Host + "/base:1"
	mustFail(t, e.kiln("", "pull", ref), exitRegistry, "cannot reach registry "+reg.Host, "--insecure-registry "+reg.Host)
	e.mustKiln("--insecure-registry", reg.Host, "pull", ref)
	e.mustKiln("tag", ref, "mine:1")
	mustFail(t, e.kiln("", "push", "mine:1", reg.Host+"/pushed:1"), exitRegistry, "--insecure-registry "+reg.Host)
	if err := os.WriteFile(filepath.Join(e.root, "config.json"), []byte(`{"registry":{"insecure":["`+reg.Host+`"]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustKiln("push", "mine:1", reg.Host+"/pushed:1")
	e.mustKiln("pull", reg.Host+"/pushed:1")
}
