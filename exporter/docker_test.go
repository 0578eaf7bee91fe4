//go:build linux

package exporter

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func writeDockerFile(t *testing.T, img v1.Image, ref string) (string, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "img.tar")
	f, err := os.Create(file)
	must(t, err)
	must(t, WriteDockerArchive(t.Context(), f, img, ref))
	must(t, f.Close())
	cfg, err := img.ConfigName()
	must(t, err)
	return file, cfg.Hex
}

func TestWriteDockerArchive(t *testing.T) {
	img := testImage(t)
	file, cfgHex := writeDockerFile(t, img, "hello:1")
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) })
	must(t, err)
	if len(m) != 1 || !slices.Equal(m[0].RepoTags, []string{"hello:1"}) || m[0].Config != "sha256:"+cfgHex {
		t.Fatalf("manifest.json = %+v, want one image tagged hello:1 with config sha256:%s", m, cfgHex)
	}
	tag, err := name.NewTag("hello:1")
	must(t, err)
	back, err := tarball.ImageFromPath(file, &tag)
	must(t, err)
	if g, w := layerDigests(t, back), layerDigests(t, img); !slices.Equal(g, w) {
		t.Errorf("layers read back %v, want %v", g, w)
	}
	gotCfg, err := back.ConfigName()
	must(t, err)
	if gotCfg.Hex != cfgHex {
		t.Errorf("config read back %s, want sha256:%s", gotCfg, cfgHex)
	}
	if err := WriteDockerArchive(t.Context(), os.Stdout, img, ""); err == nil {
		t.Error("WriteDockerArchive without a name succeeded")
	}
}

func TestPodmanLoad(t *testing.T) {
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman not installed")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: podman with its own storage root")
	}
	file, cfgHex := writeDockerFile(t, testImage(t), "kiln-test/hello:1")
	// A storage of its own, so the test never touches the host's images.
	store := t.TempDir()
	podman := func(ctx context.Context, args ...string) string {
		t.Helper()
		base := []string{"--root", filepath.Join(store, "root"), "--runroot", filepath.Join(store, "run"),
			"--storage-driver", "vfs", "--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "file"}
		out, err := exec.CommandContext(ctx, "podman", append(base, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	podman(t.Context(), "load", "-i", file)
	t.Cleanup(func() { podman(context.Background(), "rmi", "-a", "-f") })
	id := strings.TrimSpace(podman(t.Context(), "image", "inspect", "--format", "{{.Id}}", "localhost/kiln-test/hello:1"))
	if id != cfgHex {
		t.Errorf("podman loaded image id %s, want %s", id, cfgHex)
	}
}
