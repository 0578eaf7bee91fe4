//go:build linux

package busybox

import (
	"archive/tar"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kiln-build/kiln/containerenv"
	"github.com/kiln-build/kiln/layer"
)

func requireBusybox(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(DefaultPath); err != nil {
		t.Skipf("no %s (apt-get install busybox-static): %v", DefaultPath, err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestImageReproducible(t *testing.T) {
	requireBusybox(t)
	a, err := Image("")
	must(t, err)
	b, err := Image(DefaultPath)
	must(t, err)
	da, err := a.Digest()
	must(t, err)
	db, err := b.Digest()
	must(t, err)
	if da != db {
		t.Errorf("two builds from the same busybox differ: %s, %s", da, db)
	}
}

func TestImageContents(t *testing.T) {
	requireBusybox(t)
	img, err := Image("")
	must(t, err)

	mt, err := img.MediaType()
	must(t, err)
	m, err := img.Manifest()
	must(t, err)
	if mt != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON || len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
		t.Errorf("media types: manifest %s config %s layers %v; want OCI, one layer", mt, m.Config.MediaType, m.Layers)
	}
	cfg, err := img.ConfigFile()
	must(t, err)
	if cfg.OS != "linux" || cfg.Architecture != "amd64" || !slices.Equal(cfg.Config.Cmd, []string{"sh"}) ||
		!slices.Equal(cfg.Config.Env, []string{"PATH=" + containerenv.DefaultPath}) || len(cfg.History) != 1 || len(cfg.RootFS.DiffIDs) != 1 {
		t.Errorf("config = %+v", cfg)
	}

	ls, err := img.Layers()
	must(t, err)
	rc, err := ls[0].Uncompressed()
	must(t, err)
	defer rc.Close()
	hdrs := map[string]*tar.Header{}
	var names []string
	var binSum [32]byte
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		must(t, err)
		hdrs[hdr.Name] = hdr
		names = append(names, hdr.Name)
		body, err := io.ReadAll(tr)
		must(t, err)
		switch hdr.Name {
		case "bin/busybox":
			binSum = sha256.Sum256(body)
		case "etc/passwd":
			if !strings.Contains(string(body), "root:x:0:0:root:/root:/bin/sh\n") || !strings.Contains(string(body), "user:x:1000:1000:user:/home/user:/bin/sh\n") {
				t.Errorf("etc/passwd = %q", body)
			}
		case "etc/group":
			if string(body) != "root:x:0:\nuser:x:1000:\n" {
				t.Errorf("etc/group = %q", body)
			}
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("entries not in lexical order: %q", names)
	}
	host, err := os.ReadFile(DefaultPath)
	must(t, err)
	if binSum != sha256.Sum256(host) {
		t.Error("bin/busybox is not the host's busybox")
	}
	list, err := exec.Command(DefaultPath, "--list").Output()
	must(t, err)
	applets := strings.Fields(string(list))
	for _, a := range append(applets, "sh") {
		if a == "busybox" {
			continue
		}
		if h := hdrs["bin/"+a]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
			t.Errorf("bin/%s is not a symlink to busybox: %+v", a, h)
		}
	}
	for name, want := range map[string]struct {
		mode int64
		uid  int
	}{"tmp/": {0o1777, 0}, "root/": {0o700, 0}, "home/user/": {0o755, 1000}, "etc/": {0o755, 0}, "proc/": {0o555, 0}, "bin/busybox": {0o755, 0}} {
		h := hdrs[name]
		if h == nil || h.Mode != want.mode || h.Uid != want.uid || h.Gid != want.uid || !h.ModTime.Equal(created) {
			t.Errorf("%s = %+v, want mode %o owner %d and the fixed time", name, h, want.mode, want.uid)
		}
	}
}

func TestImageErrors(t *testing.T) {
	if _, err := Image(filepath.Join(t.TempDir(), "nope")); err == nil || !strings.Contains(err.Error(), "apt-get install busybox-static") {
		t.Errorf("Image of a missing binary: %v, want advice to install busybox-static", err)
	}
	notELF := filepath.Join(t.TempDir(), "busybox")
	must(t, os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755))
	if _, err := Image(notELF); err == nil {
		t.Error("Image of a shell script succeeded")
	}
	if _, err := os.Stat("/bin/ls"); err == nil {
		if _, err := Image("/bin/ls"); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
			t.Errorf("Image of a dynamic binary: %v", err)
		}
	}
}

func TestPushPull(t *testing.T) {
	requireBusybox(t)
	img, err := Image("")
	must(t, err)
	host, stop, err := Serve()
	must(t, err)
	defer stop()
	ref := host + "/busybox:latest"
	must(t, Push(t.Context(), img, ref))

	r, err := name.ParseReference(ref, name.Insecure)
	must(t, err)
	got, err := remote.Image(r, remote.WithContext(t.Context()))
	must(t, err)
	want, err := img.Digest()
	must(t, err)
	gotDigest, err := got.Digest()
	must(t, err)
	if gotDigest != want {
		t.Errorf("pulled %s, pushed %s", gotDigest, want)
	}
	must(t, validate.Image(got))
	if err := Push(t.Context(), img, "not a ref"); err == nil {
		t.Error("Push to an invalid reference succeeded")
	}
}

// TestRuns unpacks the image and runs its shell in a chroot: the applet
// symlinks, PATH and accounts must work together.
func TestRuns(t *testing.T) {
	requireBusybox(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root: chroot")
	}
	img, err := Image("")
	must(t, err)
	rootfs := t.TempDir()
	ls, err := img.Layers()
	must(t, err)
	rc, err := ls[0].Uncompressed()
	must(t, err)
	_, err = layer.Apply(t.Context(), rootfs, rc)
	rc.Close()
	must(t, err)
	cmd := exec.CommandContext(t.Context(), "chroot", rootfs, "/bin/sh", "-c", "ls /bin/ls && id -un && su -s /bin/sh user -c 'id -un; cd && pwd' && env true && echo ok")
	cmd.Env = []string{"PATH=" + containerenv.DefaultPath}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("running sh in the image: %v\n%s", err, out)
	}
	if want := "/bin/ls\nroot\nuser\n/home/user\nok\n"; string(out) != want {
		t.Errorf("output %q, want %q", out, want)
	}
}
