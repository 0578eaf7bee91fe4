package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The build context is the attacker's (a cloned repository): these tests
// check that nothing outside it is read through it (security issue #7).
// Every outside file they plant holds a unique marker that must never show
// up in kiln's output or in an image.

// canary writes, outside any build context, a passwd-like file holding a
// fresh marker, and returns its path and the marker. The marker is on the
// first line, so a Dockerfile that read it would fail with "unknown
// instruction: <marker>..." and print it in the error snippet.
func canary(t *testing.T) (path, marker string) {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	marker = "KILNCANARY" + hex.EncodeToString(b)
	path = filepath.Join(t.TempDir(), "passwd")
	content := marker + ":x:0:0:root:/root:/bin/sh\n" + marker + "-second-line\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, marker
}

// kilnBounded runs the CLI like env.kiln, but kills it after timeout (a
// FIFO opened for reading blocks forever) and, when memCap is set, caps its
// address space (reading /dev/zero or a sparse terabyte would otherwise
// take the machine's memory before the timeout).
func kilnBounded(e *env, timeout time.Duration, memCap uint64, args ...string) (r result, timedOut bool) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := e.command(ctx, args...)
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("starting kiln %v: %v", args, err)
	}
	if memCap > 0 {
		lim := unix.Rlimit{Cur: memCap, Max: memCap}
		if err := unix.Prlimit(cmd.Process.Pid, unix.RLIMIT_AS, &lim, nil); err != nil {
			e.t.Logf("prlimit: %v", err)
		}
	}
	err := cmd.Wait()
	r = result{stdout: out.String(), stderr: errb.String()}
	var xe *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return r, true
	case errors.As(err, &xe):
		r.code = xe.ExitCode()
	case err != nil:
		e.t.Fatalf("running kiln %v: %v", args, err)
	}
	return r, false
}

func mkfifo(t *testing.T, p string) {
	t.Helper()
	if err := unix.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// sparse makes p a file of size bytes that takes no disk.
func sparse(t *testing.T, p string, size int64) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

// hasMarker reports where in an image's files (contents, link targets,
// names) the marker appears.
func hasMarker(t *testing.T, e *env, ref, marker string) []string {
	t.Helper()
	var where []string
	for p, f := range files(t, e.image(ref)) {
		if strings.Contains(f.data, marker) || strings.Contains(f.hdr.Linkname, marker) || strings.Contains(p, marker) {
			where = append(where, p)
		}
	}
	return where
}

// TestContextDockerfileBoundary: the Dockerfile and .dockerignore kiln
// reads from the context are files inside it; what -f names may be
// anywhere, but must be a regular file; neither is read past the limit.
func TestContextDockerfileBoundary(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	canaryPath, marker := canary(t)
	outside := filepath.Dir(canaryPath)
	fifoOut := filepath.Join(outside, "fifo")
	mkfifo(t, fifoOut)
	good := "ARG BASE\nFROM $BASE\nCOPY . /ctx/\n"

	type tc struct {
		name string
		// attack says which attack the case covers, each failing on the
		// code before issue #7's fix ("" for a case that only pins the
		// behaviour that must keep working, or BuildKit's resolution).
		attack string
		setup  func(t *testing.T, dir string) []string // extra args before the context
		ok     bool
		linked bool     // name the context through a symlink to it
		want   []string // substrings of stderr (refused cases)
		check  func(t *testing.T, ref string)
	}
	cases := []tc{
		{
			name:   "dockerfile-symlink-absolute-outside",
			attack: "a context's Dockerfile symlinked to a host file (/etc/passwd) printed it in the error snippet",
			setup: func(t *testing.T, dir string) []string {
				symlink(t, canaryPath, filepath.Join(dir, "Dockerfile"))
				return nil
			},
			want: []string{"Dockerfile is a symlink to " + canaryPath, "outside the build context", "-f"},
		},
		{
			name:   "dockerfile-symlink-relative-outside",
			attack: "the same through ../ instead of an absolute target",
			setup: func(t *testing.T, dir string) []string {
				rel, err := filepath.Rel(dir, canaryPath)
				if err != nil {
					t.Fatal(err)
				}
				symlink(t, rel, filepath.Join(dir, "Dockerfile"))
				return nil
			},
			want: []string{"Dockerfile is a symlink to ../", "outside the build context"},
		},
		{
			name:   "dockerfile-symlink-chain-outside",
			attack: "a chain of links, the first staying inside the context, the second leaving it",
			setup: func(t *testing.T, dir string) []string {
				symlink(t, canaryPath, filepath.Join(dir, "build", "real"))
				symlink(t, "build/real", filepath.Join(dir, "Dockerfile"))
				return nil
			},
			want: []string{"Dockerfile is a symlink to build/real", canaryPath, "outside the build context"},
		},
		{
			// The refusal names the link's target: one crafted to write
			// terminal escapes and a fake line is shown quoted.
			name: "dockerfile-symlink-escapes-in-target",
			setup: func(t *testing.T, dir string) []string {
				symlink(t, "/nowhere\x1b[2J\nall good", filepath.Join(dir, "Dockerfile"))
				return nil
			},
			want: []string{`Dockerfile is a symlink to "/nowhere\x1b[2J\nall good"`, "outside the build context"},
		},
		{
			name:   "dockerfile-symlink-fifo-outside",
			attack: "a Dockerfile symlinked to a FIFO outside: opening it for reading hung kiln",
			setup: func(t *testing.T, dir string) []string {
				symlink(t, fifoOut, filepath.Join(dir, "Dockerfile"))
				return nil
			},
			want: []string{"Dockerfile is a symlink to " + fifoOut, "outside the build context"},
		},
		{
			name:   "dockerfile-symlink-dev-zero",
			attack: "a Dockerfile symlinked to /dev/zero: kiln read it until out of memory",
			setup: func(t *testing.T, dir string) []string {
				symlink(t, "/dev/zero", filepath.Join(dir, "Dockerfile"))
				return nil
			},
			want: []string{"Dockerfile is a symlink to /dev/zero", "outside the build context"},
		},
		{
			name:   "dockerfile-fifo-in-context",
			attack: "a FIFO named Dockerfile in the context (from an unpacked archive): hung kiln",
			setup: func(t *testing.T, dir string) []string {
				mkfifo(t, filepath.Join(dir, "Dockerfile"))
				return nil
			},
			want: []string{"Dockerfile", "not a regular file (FIFO)"},
		},
		{
			name:   "dockerfile-char-device-in-context",
			attack: "a character device (zero, 1:5) named Dockerfile in the context: read until out of memory",
			setup: func(t *testing.T, dir string) []string {
				if err := unix.Mknod(filepath.Join(dir, "Dockerfile"), unix.S_IFCHR|0o644, int(unix.Mkdev(1, 5))); err != nil {
					t.Skipf("mknod: %v", err)
				}
				return nil
			},
			want: []string{"Dockerfile", "not a regular file (character device)"},
		},
		{
			name: "dockerfile-directory",
			setup: func(t *testing.T, dir string) []string {
				if err := os.Mkdir(filepath.Join(dir, "Dockerfile"), 0o755); err != nil {
					t.Fatal(err)
				}
				return nil
			},
			want: []string{"Dockerfile", "not a regular file (directory)"},
		},
		{
			name: "dockerfile-symlink-inside-relative",
			setup: func(t *testing.T, dir string) []string {
				if err := os.MkdirAll(filepath.Join(dir, "build"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "build", "Dockerfile.real"), []byte(good), 0o644); err != nil {
					t.Fatal(err)
				}
				symlink(t, "build/Dockerfile.real", filepath.Join(dir, "Dockerfile"))
				return nil
			},
			ok: true,
		},
		{
			// BuildKit (fsutil FollowLinks, then ReadFile in the
			// snapshot) resolves an absolute link inside the context
			// root: /build/Dockerfile.real is CONTEXT/build/Dockerfile.real.
			name: "dockerfile-symlink-inside-absolute",
			setup: func(t *testing.T, dir string) []string {
				if err := os.MkdirAll(filepath.Join(dir, "build"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "build", "Dockerfile.real"), []byte(good), 0o644); err != nil {
					t.Fatal(err)
				}
				symlink(t, "/build/Dockerfile.real", filepath.Join(dir, "Dockerfile"))
				return nil
			},
			ok: true,
		},
		{
			// "../ctx/real" from ctx is back inside on the host, but
			// BuildKit resolves it in the context root, where ".."
			// stops: CONTEXT/ctx/real, not there.
			name: "dockerfile-symlink-climbs-back-in",
			setup: func(t *testing.T, dir string) []string {
				if err := os.WriteFile(filepath.Join(dir, "real"), []byte(good), 0o644); err != nil {
					t.Fatal(err)
				}
				symlink(t, "../"+filepath.Base(dir)+"/real", filepath.Join(dir, "Dockerfile"))
				return nil
			},
			want: []string{"Dockerfile is a symlink to ../", "climbs out of the build context"},
		},
		{
			// An absolute target is taken inside the context root, as
			// BuildKit takes it, even when on the host it names a file
			// of the context.
			name: "dockerfile-symlink-absolute-host-path-inside",
			setup: func(t *testing.T, dir string) []string {
				if err := os.WriteFile(filepath.Join(dir, "real"), []byte(good), 0o644); err != nil {
					t.Fatal(err)
				}
				symlink(t, filepath.Join(dir, "real"), filepath.Join(dir, "Dockerfile"))
				return nil
			},
			want: []string{"an absolute path, which is taken inside the build context"},
		},
		{
			name: "dockerfile-symlink-dangling",
			setup: func(t *testing.T, dir string) []string {
				symlink(t, "missing", filepath.Join(dir, "Dockerfile"))
				return nil
			},
			want: []string{"Dockerfile is a symlink to missing, which is not in the build context"},
		},
		{
			name:   "context-through-symlink",
			linked: true,
			setup: func(t *testing.T, dir string) []string {
				if err := os.WriteFile(filepath.Join(dir, "real"), []byte(good), 0o644); err != nil {
					t.Fatal(err)
				}
				symlink(t, "real", filepath.Join(dir, "Dockerfile"))
				return nil
			},
			ok: true,
		},
		{
			// A .dockerignore that leads nowhere is no .dockerignore, as
			// BuildKit takes it.
			name: "dockerignore-symlink-dangling",
			setup: func(t *testing.T, dir string) []string {
				symlink(t, "missing", filepath.Join(dir, ".dockerignore"))
				return nil
			},
			ok: true,
		},
		{
			name:   "dockerignore-symlink-outside",
			attack: "a .dockerignore symlinked to a host file: its lines became patterns (and reached errors)",
			setup: func(t *testing.T, dir string) []string {
				symlink(t, canaryPath, filepath.Join(dir, ".dockerignore"))
				return nil
			},
			want: []string{".dockerignore is a symlink to " + canaryPath, "outside the build context"},
		},
		{
			name:   "dockerfile-dockerignore-symlink-outside",
			attack: "the same with Dockerfile.dockerignore",
			setup: func(t *testing.T, dir string) []string {
				symlink(t, canaryPath, filepath.Join(dir, "Dockerfile.dockerignore"))
				return nil
			},
			want: []string{"Dockerfile.dockerignore is a symlink to " + canaryPath, "outside the build context"},
		},
		{
			name:   "dockerignore-fifo-in-context",
			attack: "a FIFO named .dockerignore in the context: hung kiln",
			setup: func(t *testing.T, dir string) []string {
				mkfifo(t, filepath.Join(dir, ".dockerignore"))
				return nil
			},
			want: []string{".dockerignore", "not a regular file (FIFO)"},
		},
		{
			name:   "dockerignore-huge",
			attack: "a sparse multi-gigabyte .dockerignore: read whole into memory",
			setup: func(t *testing.T, dir string) []string {
				sparse(t, filepath.Join(dir, ".dockerignore"), 64<<30)
				return nil
			},
			want: []string{".dockerignore", "16 MiB"},
		},
		{
			name: "f-outside-context",
			setup: func(t *testing.T, dir string) []string {
				other := filepath.Join(t.TempDir(), "app.Dockerfile")
				if err := os.WriteFile(other, []byte(good), 0o644); err != nil {
					t.Fatal(err)
				}
				// <that path>.dockerignore beside it applies, as in docker.
				if err := os.WriteFile(other+".dockerignore", []byte("ignored.txt\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return []string{"-f", other}
			},
			ok: true,
			check: func(t *testing.T, ref string) {
				fs := files(t, e.image(ref))
				if _, ok := fs["/ctx/ignored.txt"]; ok {
					t.Errorf("/ctx/ignored.txt copied: app.Dockerfile.dockerignore beside -f was not applied")
				}
				if _, ok := fs["/ctx/kept.txt"]; !ok {
					t.Errorf("/ctx/kept.txt missing")
				}
			},
		},
		{
			name:   "f-dev-zero",
			attack: "-f /dev/zero: read until out of memory",
			setup: func(t *testing.T, dir string) []string {
				return []string{"-f", "/dev/zero"}
			},
			want: []string{"-f /dev/zero: not a regular file (character device)"},
		},
		{
			name:   "f-fifo",
			attack: "-f FIFO: hung kiln",
			setup: func(t *testing.T, dir string) []string {
				return []string{"-f", fifoOut}
			},
			want: []string{"-f " + fifoOut + ": not a regular file (FIFO)"},
		},
		{
			name: "f-directory",
			setup: func(t *testing.T, dir string) []string {
				return []string{"-f", outside}
			},
			want: []string{"-f " + outside + ": not a regular file (directory)"},
		},
		{
			name:   "f-in-context-symlink-outside",
			attack: "a README says `-f docker/app.Dockerfile`, and the context made that a link to a host file",
			setup: func(t *testing.T, dir string) []string {
				symlink(t, canaryPath, filepath.Join(dir, "docker", "app.Dockerfile"))
				return []string{"-f", filepath.Join(dir, "docker", "app.Dockerfile")}
			},
			want: []string{"app.Dockerfile is a symlink to " + canaryPath},
		},
		{
			name:   "f-dockerignore-symlink-outside",
			attack: "the .dockerignore beside an -f Dockerfile in the context linked to a host file",
			setup: func(t *testing.T, dir string) []string {
				df := filepath.Join(dir, "docker", "app.Dockerfile")
				if err := os.MkdirAll(filepath.Dir(df), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(df, []byte(good), 0o644); err != nil {
					t.Fatal(err)
				}
				symlink(t, canaryPath, df+".dockerignore")
				return []string{"-f", df}
			},
			want: []string{"app.Dockerfile.dockerignore is a symlink to " + canaryPath},
		},
		{
			name:   "dockerfile-just-over-limit",
			attack: "a Dockerfile bigger than the limit is refused, not read whole",
			setup: func(t *testing.T, dir string) []string {
				sparse(t, filepath.Join(dir, "Dockerfile"), maxDockerfileSize+1)
				return nil
			},
			want: []string{"Dockerfile", "16 MiB"},
		},
		{
			name:   "dockerfile-huge-sparse",
			attack: "a sparse 64 GiB Dockerfile in the context (no disk, all memory): read until out of memory",
			setup: func(t *testing.T, dir string) []string {
				sparse(t, filepath.Join(dir, "Dockerfile"), 64<<30)
				return nil
			},
			want: []string{"Dockerfile", "16 MiB"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.attack != "" {
				t.Logf("attack: %s", c.attack)
			}
			dir := e.context(map[string]string{"kept.txt": "k\n", "ignored.txt": "i\n"})
			extra := c.setup(t, dir)
			// A case that made no Dockerfile of its own builds a good one.
			if _, err := os.Lstat(filepath.Join(dir, "Dockerfile")); errors.Is(err, os.ErrNotExist) {
				if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(good), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			ref := "boundary:" + c.name
			args := append([]string{"build", "--progress=plain", "-t", ref, "--build-arg", "BASE=" + e.base}, extra...)
			if c.linked {
				link := filepath.Join(t.TempDir(), "ctxlink")
				symlink(t, dir, link)
				dir = link
			}
			args = append(args, dir)
			var memCap uint64
			timeout := 5 * time.Minute
			if !c.ok {
				memCap, timeout = 4<<30, 30*time.Second
			}
			start := time.Now()
			r, timedOut := kilnBounded(e, timeout, memCap, args...)
			took := time.Since(start)
			if timedOut {
				t.Fatalf("kiln did not finish within %s (blocked reading?)\nstderr:\n%s", timeout, r.stderr)
			}
			if strings.Contains(r.stdout, marker) || strings.Contains(r.stderr, marker) {
				t.Errorf("the outside file's content reached kiln's output:\n%s", r.stderr)
			}
			if c.ok {
				if r.code != 0 {
					t.Fatalf("exit %d, want success\nstderr:\n%s", r.code, r.stderr)
				}
				if where := hasMarker(t, e, ref, marker); len(where) > 0 {
					t.Errorf("the outside file's content is in the image at %v", where)
				}
				if c.check != nil {
					c.check(t, ref)
				}
				return
			}
			if r.code == 0 {
				t.Fatalf("build succeeded, want it refused\nstderr:\n%s", r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if took > 10*time.Second {
				t.Errorf("refusing took %s", took)
			}
		})
	}
}

// TestContextCopyBoundary: COPY, ADD and RUN --mount=type=bind read the
// context, never a host file through a symlink in it or a ../ source. As
// in BuildKit, a symlink source is resolved inside the context root (an
// absolute target is relative to the root; ../ stops at it), a symlink
// below a copied directory is copied as a symlink. The audit that wrote
// these found every case already held on the code before issue #7's fix
// (selection resolves with securejoin in the context root; bind mount
// sources likewise): they pin that boundary. Each case's attack says what
// it tries.
func TestContextCopyBoundary(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	canaryPath, marker := canary(t)
	outDir := filepath.Dir(canaryPath)
	// An outside archive holding the marker, for ADD's extraction.
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "secret.txt", Mode: 0o644, Size: int64(len(marker) + 1), Typeflag: tar.TypeReg})
	tw.Write([]byte(marker + "\n"))
	tw.Close()
	tarPath := filepath.Join(outDir, "secret.tar")
	if err := os.WriteFile(tarPath, tb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	// The context sits beside the canary so that "../passwd" from it
	// names the canary on the host.
	parent := outDir
	newCtx := func(t *testing.T, dockerfile string) string {
		dir, err := os.MkdirTemp(parent, "ctx")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("ARG BASE\nFROM $BASE\n"+dockerfile), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "inside.txt"), []byte("inside\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		symlink(t, canaryPath, filepath.Join(dir, "link"))                               // absolute, to a file outside
		symlink(t, "../"+filepath.Base(outDir)+"/passwd", filepath.Join(dir, "rellink")) // relative, to the same
		symlink(t, outDir, filepath.Join(dir, "dirlink"))                                // a directory outside
		symlink(t, tarPath, filepath.Join(dir, "link.tar"))                              // an archive outside
		symlink(t, "inside.txt", filepath.Join(dir, "goodlink"))                         // inside: followed
		return dir
	}
	cases := []struct {
		name, attack, dockerfile string
		// mayFail: the build may fail (the source is not in the context);
		// either way nothing of the canary may show.
		mayFail bool
		check   func(t *testing.T, fs map[string]file)
	}{
		{name: "copy-symlink-absolute", attack: "COPY link where link -> a host file",
			dockerfile: "COPY link /out/x\n", mayFail: true},
		{name: "copy-symlink-relative", attack: "COPY rellink where rellink -> ../<dir>/passwd on the host",
			dockerfile: "COPY rellink /out/x\n", mayFail: true},
		{name: "copy-parent-symlink", attack: "COPY dirlink/passwd: a parent component linked to a host directory",
			dockerfile: "COPY dirlink/passwd /out/x\n", mayFail: true},
		{name: "copy-parent-symlink-dir", attack: "COPY dirlink/: the host directory's contents",
			dockerfile: "COPY dirlink/ /out/\n", mayFail: true},
		{name: "copy-parent-symlink-wildcard", attack: "COPY dirlink/* through a wildcard",
			dockerfile: "COPY dirlink/* /out/\n", mayFail: true},
		{name: "copy-parents-symlink", attack: "COPY --parents dirlink/passwd",
			dockerfile: "COPY --parents dirlink/passwd /out/\n", mayFail: true},
		{name: "copy-dotdot", attack: "COPY ../passwd: the host file beside the context",
			dockerfile: "COPY ../" + filepath.Base(canaryPath) + " /out/x\n", mayFail: true},
		{name: "copy-dotdot-dir", attack: "COPY ../ : the context's parent directory",
			dockerfile: "COPY ../ /out/\n"},
		{name: "copy-context-with-links", attack: "COPY . copies the links as links, not their host targets",
			dockerfile: "COPY . /ctx/\n",
			check: func(t *testing.T, fs map[string]file) {
				if f := fs["/ctx/link"]; f.hdr == nil || f.hdr.Typeflag != tar.TypeSymlink || f.hdr.Linkname != canaryPath {
					t.Errorf("/ctx/link is not the symlink itself: %+v", f.hdr)
				}
				if f := fs["/ctx/dirlink"]; f.hdr == nil || f.hdr.Typeflag != tar.TypeSymlink {
					t.Errorf("/ctx/dirlink is not the symlink itself: %+v", f.hdr)
				}
			}},
		{name: "copy-symlink-inside", dockerfile: "COPY goodlink /out/x\n",
			check: func(t *testing.T, fs map[string]file) {
				if got := fs["/out/x"].data; got != "inside\n" {
					t.Errorf("/out/x = %q, want the linked context file", got)
				}
			}},
		{name: "add-symlink-archive", attack: "ADD link.tar where link.tar -> a host archive (extracted)",
			dockerfile: "ADD link.tar /out/\n", mayFail: true},
		{name: "add-parent-symlink", attack: "ADD dirlink/passwd",
			dockerfile: "ADD dirlink/passwd /out/x\n", mayFail: true},
		{name: "run-bind-symlink", attack: "RUN --mount=type=bind,source=link: a host file bound in",
			dockerfile: "RUN --mount=type=bind,source=link,target=/m cat /m > /seen || true\n", mayFail: true},
		{name: "run-bind-symlink-rw", attack: "the same mounted rw (an overlay of the context)",
			dockerfile: "RUN --mount=type=bind,source=link,target=/m,rw cat /m > /seen || true\n", mayFail: true},
		{name: "run-bind-parent-symlink", attack: "RUN --mount=type=bind,source=dirlink: a host directory bound in",
			dockerfile: "RUN --mount=type=bind,source=dirlink,target=/m cat /m/passwd > /seen || true\n", mayFail: true},
		{name: "run-bind-dotdot", attack: "RUN --mount=type=bind,source=../",
			dockerfile: "RUN --mount=type=bind,source=../,target=/m cat /m/passwd > /seen || true\n"},
		{name: "run-bind-context-links", attack: "the whole context bound in: its links resolve in the container, not on the host",
			dockerfile: "RUN --mount=type=bind,target=/m cat /m/link /m/dirlink/passwd /m/rellink > /seen || true\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.attack != "" {
				t.Logf("attack: %s", c.attack)
			}
			dir := newCtx(t, c.dockerfile)
			ref := "copyboundary:" + c.name
			r, timedOut := kilnBounded(e, 5*time.Minute, 0, "build", "--progress=plain", "-t", ref, "--build-arg", "BASE="+e.base, dir)
			if timedOut {
				t.Fatalf("kiln did not finish\nstderr:\n%s", r.stderr)
			}
			if strings.Contains(r.stdout, marker) || strings.Contains(r.stderr, marker) {
				t.Errorf("the outside file's content reached kiln's output:\n%s", r.stderr)
			}
			if r.code != 0 {
				if !c.mayFail {
					t.Fatalf("exit %d\nstderr:\n%s", r.code, r.stderr)
				}
				t.Logf("refused: %s", lastLine(r.stderr))
				return
			}
			if where := hasMarker(t, e, ref, marker); len(where) > 0 {
				t.Errorf("the outside file's content is in the image at %v", where)
			}
			if c.check != nil {
				c.check(t, files(t, e.image(ref)))
			}
		})
	}
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
