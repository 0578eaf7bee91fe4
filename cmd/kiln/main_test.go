package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/exporter"
	"github.com/kiln-build/kiln/internal/busybox"
	"github.com/kiln-build/kiln/store"
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
//
// Tests that build or run call t.Parallel() before newEnv: each env has its
// own store under t.TempDir(), the registry is shared (and only read: a test
// that pushes uses a repository name of its own), and the kiln processes
// take their environment from e.extra, never from os.Setenv / t.Setenv.
type env struct {
	t     *testing.T
	root  string
	reg   string // host:port
	base  string // reference to the busybox base
	extra []string
}

// busyboxRegistry is the registry every env shares, started by the first
// newEnv of the run: busybox.Image builds the image from the host's busybox
// once, the in-process registry serves it to every test's pulls.
var busyboxRegistry struct {
	once sync.Once
	host string
	skip string // why there is no busybox base: every e2e test skips
	err  error
}

func sharedRegistry(t *testing.T) string {
	t.Helper()
	r := &busyboxRegistry
	r.once.Do(func() {
		img, err := busybox.Image("")
		if err != nil {
			r.skip = fmt.Sprintf("no busybox base: %v", err)
			return
		}
		host, _, err := busybox.Serve() // for the whole run: the process exit stops it
		if err != nil {
			r.err = err
			return
		}
		if err := busybox.Push(context.Background(), img, host+"/busybox:latest"); err != nil {
			r.err = err
			return
		}
		r.host = host
	})
	if r.skip != "" {
		t.Skip(r.skip)
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.host
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return envAt(t, t.TempDir())
}

// envAt is the env of the store at root, for t; it skips t unless
// end-to-end tests can run.
func envAt(t *testing.T, root string) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds run steps in new namespaces over overlayfs")
	}
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	host := sharedRegistry(t)
	return &env{t: t, root: root, reg: host, base: host + "/busybox:latest"}
}

type result struct {
	stdout, stderr string
	code           int
}

// raceExitSleep is the race runtime's sleep at exit in the kiln children,
// in milliseconds. Its default, a second, is there to let goroutines still
// running finish a race report; every kiln process the tests start paid it
// (most of the suite's wall time). Races found while kiln runs are
// reported as before and fail the test (exit 66); only the wait after main
// returns is shortened. A GORACE that sets atexit_sleep_ms itself wins.
const raceExitSleep = "atexit_sleep_ms=50"

// childEnv is the environment of a kiln child: the test's own, the
// switch that makes the test binary the CLI, and extra (later entries win).
func childEnv(extra []string) []string {
	env := append(os.Environ(), "KILN_TEST_MAIN=1")
	if g := os.Getenv("GORACE"); !strings.Contains(g, "atexit_sleep_ms") {
		env = append(env, "GORACE="+strings.TrimSpace(g+" "+raceExitSleep))
	}
	return append(env, extra...)
}

// command is the CLI run against the env's store, not yet started.
func (e *env) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"--root", e.root}, args...)...)
	cmd.Env = childEnv(e.extra)
	return cmd
}

// kiln runs the CLI against the env's store.
func (e *env) kiln(stdin string, args ...string) result {
	e.t.Helper()
	r, err := e.run(stdin, args...)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// run is kiln without a test to fail: the error says why kiln could not be
// run at all (its exit code is in the result). Safe from any goroutine.
func (e *env) run(stdin string, args ...string) (result, error) {
	cmd := e.command(context.Background(), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var xe *exec.ExitError
	if errors.As(err, &xe) {
		r.code = xe.ExitCode()
	} else if err != nil {
		return r, fmt.Errorf("running kiln %v: %w", args, err)
	}
	return r, nil
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
	s, err := store.Open(e.root)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx := context.Background()
	rec, err := s.Names().Get(ctx, ref)
	if err != nil {
		e.t.Fatal(err)
	}
	img, err := s.Images().Get(ctx, rec.Digest)
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
	go func() {
		pw.CloseWithError(exporter.WriteFilesystemTar(context.Background(), pw, memoImage{img}))
	}()
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

// Decompressing layers under the race detector is slow, and almost every
// image the tests flatten has the busybox layer at the bottom (the
// exporter reads each layer twice): memoImage gives the exporter the
// uncompressed bytes of a layer it has seen before, once the blob it would
// decompress now is checked to be the very blob those bytes came from.
type memoImage struct{ v1.Image }

func (m memoImage) Layers() ([]v1.Layer, error) {
	ls, err := m.Image.Layers()
	for i, l := range ls {
		ls[i] = memoLayer{l}
	}
	return ls, err
}

type memoLayer struct{ v1.Layer }

// memoMax bounds the layers memoized: small enough to keep in memory.
const memoMax = 16 << 20

var uncompressedLayers sync.Map // compressed digest → []byte, its uncompressed content

func (l memoLayer) Uncompressed() (io.ReadCloser, error) {
	digest, err := l.Digest()
	if err != nil {
		return l.Layer.Uncompressed()
	}
	if b, ok := uncompressedLayers.Load(digest); ok {
		// The same compressed bytes decompress to the same content.
		if sum, err := compressedSum(l.Layer); err == nil && sum == digest {
			return io.NopCloser(bytes.NewReader(b.([]byte))), nil
		}
		return l.Layer.Uncompressed() // not the blob memoized: read it as it is
	}
	rc, err := l.Layer.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, memoMax+1))
	if err != nil {
		return nil, err
	}
	if len(b) > memoMax {
		return l.Layer.Uncompressed() // too big to keep: read it again, streamed
	}
	// Memoized only when both the blob and its content are what the
	// image says (the diff ID is checked against the bytes themselves).
	diffID, err := l.DiffID()
	if sum, cerr := compressedSum(l.Layer); err == nil && cerr == nil && sum == digest && contentSum(b) == diffID {
		uncompressedLayers.Store(digest, b)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func compressedSum(l v1.Layer) (v1.Hash, error) {
	rc, err := l.Compressed()
	if err != nil {
		return v1.Hash{}, err
	}
	defer rc.Close()
	h, _, err := v1.SHA256(rc)
	return h, err
}

func contentSum(b []byte) v1.Hash {
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	return h
}
