//go:build linux

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/exporter"
	"github.com/kiln-build/kiln/internal/busybox"
)

// TestCIDemo runs `make ci-demo`'s script with this test binary as kiln:
// two CI jobs on two empty stores against a docker-registry with htpasswd
// auth, the second running no step. The script asserts that itself and
// exits non-zero otherwise.
func TestCIDemo(t *testing.T) {
	t.Parallel()
	newEnv(t) // root, not -short, a busybox to build on
	for _, bin := range []string{"/usr/bin/docker-registry", "htpasswd", "curl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("ci-demo needs %s (Debian docker-registry, apache2-utils, curl): %v", bin, err)
		}
	}
	img, err := busybox.Image("")
	if err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(t.TempDir(), "busybox.tar")
	f, err := os.Create(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := exporter.WriteOCIArchive(context.Background(), f, img, "busybox:latest"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs("../../.ci/ci-demo.sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", script)
	// KILN_TEST_MAIN=1 (childEnv) makes this binary the CLI for the script.
	cmd.Env = childEnv([]string{"KILN=" + os.Args[0], "BUSYBOX_TAR=" + tarPath, "TMPDIR=" + t.TempDir()})
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ci-demo: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "ci-demo: OK") || !strings.Contains(string(out), "tests passed") {
		t.Errorf("ci-demo output:\n%s", out)
	}
}
