package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/exporter"
	"github.com/kiln-build/kiln/exporter/busybox"
)

// The test binary doubles as the kiln binary: tests exec it with
// KILN_TEST_MAIN=1, so every scenario runs the real CLI in its own process.
func TestMain(m *testing.M) {
	executor.Init() // the test binary is also the executor's re-exec target
	if os.Getenv("KILN_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// env is one test's world: a fresh store and a registry holding busybox.
type env struct {
	t     *testing.T
	root  string
	reg   string // host:port
	base  string // reference to the busybox base
	extra []string
}

var registryHost string

func newEnv(t *testing.T) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds run steps in new namespaces over overlayfs")
	}
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	if registryHost == "" {
		img, err := busybox.Image("")
		if err != nil {
			t.Skipf("no busybox base: %v", err)
		}
		host, _, err := busybox.Serve()
		if err != nil {
			t.Fatal(err)
		}
		if err := busybox.Push(context.Background(), img, host+"/busybox:latest"); err != nil {
			t.Fatal(err)
		}
		registryHost = host
	}
	return &env{t: t, root: t.TempDir(), reg: registryHost, base: registryHost + "/busybox:latest"}
}

type result struct {
	stdout, stderr string
	code           int
}

// kiln runs the CLI against the env's store.
func (e *env) kiln(stdin string, args ...string) result {
	e.t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"--root", e.root}, args...)...)
	cmd.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
	cmd.Env = append(cmd.Env, e.extra...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var xe *exec.ExitError
	if errors.As(err, &xe) {
		r.code = xe.ExitCode()
	} else if err != nil {
		e.t.Fatalf("running kiln %v: %v", args, err)
	}
	return r
}

// mustKiln runs the CLI and fails the test unless it exits 0.
func (e *env) mustKiln(args ...string) result {
	e.t.Helper()
	r := e.kiln("", args...)
	if r.code != 0 {
		e.t.Fatalf("kiln %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// context writes files (path → content; a trailing "/" makes a dir) into a
// new build context.
func (e *env) context(files map[string]string) string {
	e.t.Helper()
	dir := e.t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				e.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	return dir
}

// image opens a built image from the env's store.
func (e *env) image(ref string) v1.Image {
	e.t.Helper()
	s, err := cache.Open(e.root)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx := context.Background()
	rec, err := s.Resolve(ctx, ref)
	if err != nil {
		e.t.Fatal(err)
	}
	img, err := s.Image(ctx, rec.Digest)
	if err != nil {
		e.t.Fatal(err)
	}
	return img
}

type file struct {
	hdr  *tar.Header
	data string
}

// files flattens img's layers (whiteouts and opaque dirs applied, hard
// links to hidden files resolved: exporter's type=tar output) into
// path → file.
func files(t *testing.T, img v1.Image) map[string]file {
	t.Helper()
	rc, pw := io.Pipe()
	go func() { pw.CloseWithError(exporter.WriteFilesystemTar(context.Background(), pw, img)) }()
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]file{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out["/"+strings.Trim(filepath.Clean(h.Name), "/")] = file{h, string(b)}
	}
}

func configOf(t *testing.T, img v1.Image) *v1.ConfigFile {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
