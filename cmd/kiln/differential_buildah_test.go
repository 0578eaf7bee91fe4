package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggtarball "github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"
)

// buildah drives Debian's buildah on a private store: its own storage,
// registries and policy configuration, so nothing on the host is read or
// changed.
type buildah struct {
	dir     string
	env     []string
	version string
	driver  string
}

func newBuildah(t *testing.T, base string) *buildah {
	t.Helper()
	out, err := exec.Command("buildah", "--version").Output()
	if err != nil {
		t.Skipf("buildah --version: %v", err)
	}
	m := regexp.MustCompile(`version (\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("buildah --version: unexpected %q", out)
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	bh := &buildah{dir: dir, version: string(m[1])}
	t.Cleanup(func() { bh.unmountAll(t) }) // runs before dir's removal
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bh.env = append(os.Environ(),
		"CONTAINERS_REGISTRIES_CONF="+write("registries.conf", "unqualified-search-registries = []\n"),
		"CONTAINERS_CONF="+write("containers.conf", "[engine]\nruntime = \"runc\"\n"),
	)
	write("policy.json", `{"default":[{"type":"insecureAcceptAnything"}]}`)
	// overlay is fast; vfs works on any filesystem.
	var errs []string
	for _, driver := range []string{"overlay", "vfs"} {
		bh.driver = driver
		bh.env = append(bh.env, "CONTAINERS_STORAGE_CONF="+write("storage-"+driver+".conf", fmt.Sprintf(
			"[storage]\ndriver = %q\ngraphroot = %q\nrunroot = %q\n",
			driver, filepath.Join(dir, driver, "root"), filepath.Join(dir, driver, "run"))))
		_, err := bh.run(context.Background(), "pull", "--tls-verify=false", base)
		if err == nil {
			return bh
		}
		errs = append(errs, fmt.Sprintf("%s: %v", driver, err))
	}
	t.Fatalf("buildah cannot pull the base image:\n%s", strings.Join(errs, "\n"))
	return nil
}

func (bh *buildah) run(ctx context.Context, args ...string) (string, error) {
	// The policy flag belongs to the subcommand (pull, bud, push).
	full := append([]string{args[0], "--signature-policy", filepath.Join(bh.dir, "policy.json")}, args[1:]...)
	cmd := exec.CommandContext(ctx, "buildah", full...)
	cmd.Env = bh.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("buildah %s: %w\n%s", strings.Join(args, " "), err, lastLines(out.String(), 8))
	}
	return out.String(), nil
}

// build runs `buildah bud` with the flags kiln got and returns the image, or
// in bud why buildah could not build it; fail is anything else going wrong.
// The docker format, because in the OCI one buildah drops what the OCI
// config has no field for (SHELL, HEALTHCHECK, ONBUILD) and even ignores
// SHELL for RUN; BuildKit keeps them in either. The push to a docker-archive
// keeps that config as it is, uncompressed.
func (bh *buildah) build(tag, ctxDir string, args []string) (img v1.Image, bud, fail error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := append([]string{"bud", "--format", "docker", "--runtime", "runc", "--isolation", "oci",
		"--network", "host", "--layers", "--pull=false", "--tls-verify=false", "-t", tag}, args...)
	if _, err := bh.run(ctx, append(cmd, ctxDir)...); err != nil {
		return nil, err, nil
	}
	dest := filepath.Join(bh.dir, "images", tag+".tar")
	if _, err := bh.run(ctx, "push", tag, "docker-archive:"+dest); err != nil {
		return nil, nil, err
	}
	img, err := ggtarball.ImageFromPath(dest, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("buildah's image %s: %w", dest, err)
	}
	return img, nil, nil
}

// unmountAll detaches what buildah's overlay driver leaves mounted under its
// store (the store itself, bind-mounted private, and image mounts), so the
// temp dir can be removed.
func (bh *buildah) unmountAll(t *testing.T) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Error(err)
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], bh.dir+"/") {
			points = append(points, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points))) // children first
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", p, err)
		}
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
