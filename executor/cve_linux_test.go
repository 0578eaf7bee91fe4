package executor_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-build/kiln/executor"
)

// Regression tests for published escapes of runc, BuildKit and buildah,
// re-authored for kiln's executor. Each names its CVE.

// runc CVE-2019-5736: a container program run through /proc/self/exe (an
// entrypoint `#!/proc/self/exe`) is the runtime's own binary; a process in
// the container could then reopen it for writing and replace the host's
// runtime. kiln's child is started from a read-only mount of its binary
// (or a sealed copy), so the file the container reaches cannot be written.
func TestCVE_2019_5736_RuntimeBinaryNotWritable(t *testing.T) {
	requireRoot(t)
	lower := filepath.Join(t.TempDir(), "base")
	baseLayer(t, lower)
	writeFile(t, filepath.Join(lower, "x"), "#!/proc/self/exe\n", 0o755)
	// The test binary may need the host's dynamic loader and libc.
	var mounts []executor.Mount
	for _, d := range []string{"/usr", "/lib", "/lib64"} {
		if fi, err := os.Lstat(d); err == nil {
			if fi.Mode()&os.ModeSymlink != 0 {
				target, _ := os.Readlink(d)
				if err := os.Symlink(target, filepath.Join(lower, d)); err != nil {
					t.Fatal(err)
				}
				continue
			}
			mounts = append(mounts, executor.Mount{Type: "bind", Source: d, Target: d, ReadOnly: true})
		}
	}
	stdout, stderr, err := run(t, newRootfs(t, lower), executor.Process{Args: []string{"/x"}, Env: []string{"PATH=/bin", exeProbeEnv + "=1"}},
		executor.Options{Mounts: mounts})
	if err != nil {
		t.Fatalf("Run: %v (stdout %q, stderr %q)", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "readonly=true") || strings.Contains(stdout, "write-open=ok") {
		t.Fatalf("the kiln binary is writable from inside the container: %q", stdout)
	}
}

// runc CVE-2024-21626: a leaked fd to a host directory made the working
// directory a host path (WORKDIR /proc/self/fd/N). No fd but 0-2 reaches
// the program, and a working directory through /proc/self/fd is refused.
func TestCVE_2024_21626_NoHostFdOrCwd(t *testing.T) {
	requireRoot(t)
	stdout, stderr, err := run(t, baseRootfs(t), executor.Process{Args: []string{"sh", "-c", "ls /proc/1/fd; true"}}, executor.Options{})
	if err != nil {
		t.Fatalf("Run: %v (stderr %q)", err, stderr)
	}
	if got := strings.Fields(stdout); strings.Join(got, " ") != "0 1 2" {
		t.Errorf("fds of the container's process: %v, want 0 1 2", got)
	}
	for _, n := range []string{"3", "4", "5", "6", "7", "8", "9"} {
		stdout, _, err := run(t, baseRootfs(t), executor.Process{Args: []string{"pwd"}, Cwd: "/proc/self/fd/" + n}, executor.Options{})
		if err == nil {
			t.Errorf("cwd /proc/self/fd/%s was accepted, pwd %q", n, stdout)
		}
	}
}

// BuildKit CVE-2024-23652: the cleanup of mount stubs could be tricked into
// deleting host files when the step replaced a stub's parent with a
// symlink to a host directory. The cleanup never follows a symlink.
func TestCVE_2024_23652_StubCleanupStaysInLayer(t *testing.T) {
	requireRoot(t)
	canary := t.TempDir()
	mustMkdir(t, filepath.Join(canary, "b", "c"), 0o755)
	root := baseRootfs(t)
	script := "mv /a /a.old && ln -s " + canary + " /a"
	_, stderr, err := run(t, root, executor.Process{Args: []string{"sh", "-c", script}},
		executor.Options{Mounts: []executor.Mount{{Type: "tmpfs", Target: "/a/b/c"}}})
	if err != nil {
		t.Fatalf("Run: %v (stderr %q)", err, stderr)
	}
	if _, err := os.Stat(filepath.Join(canary, "b", "c")); err != nil {
		t.Fatalf("the stub cleanup deleted a host directory: %v", err)
	}
}

// BuildKit CVE-2024-23651 (and buildah CVE-2024-9675): a step sharing a
// cache mount swapped a subpath for a symlink while another step was
// mounting it, and got a host directory. The subpath is resolved inside
// the cache by fd at mount time, so no interleaving shows the host.
func TestCVE_2024_23651_CacheSubpathRace(t *testing.T) {
	requireRoot(t)
	host := t.TempDir()
	writeFile(t, filepath.Join(host, "HOST-CANARY"), "x", 0o644)
	cache := t.TempDir()
	sub := filepath.Join(cache, "sub")
	mustMkdir(t, sub, 0o755)
	writeFile(t, filepath.Join(sub, "inside"), "x", 0o644)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the attacker: flips sub between a dir and a symlink out
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tmp := filepath.Join(cache, "tmp")
			if i%2 == 0 {
				_ = os.Symlink(host, tmp)
			} else {
				_ = os.Mkdir(tmp, 0o755)
			}
			_ = os.Rename(sub, filepath.Join(cache, "old"))
			_ = os.Rename(tmp, sub)
			_ = os.RemoveAll(filepath.Join(cache, "old"))
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	for runs := 1; runs <= 40; runs++ {
		stdout, _, _ := run(t, baseRootfs(t), executor.Process{Args: []string{"ls", "/c"}},
			executor.Options{Mounts: []executor.Mount{{Type: "bind", Source: cache, Subpath: "sub", Target: "/c"}}})
		if strings.Contains(stdout, "HOST-CANARY") {
			t.Fatalf("run %d saw the host directory through the cache subpath: %q", runs, stdout)
		}
	}
}

// runc CVE-2025-31133 / CVE-2025-52565 and CVE-2019-19921: an image whose
// /dev/null, /dev/console, /dev or /proc is a symlink must not redirect
// the container's /dev or the masking of /proc to another file, in the
// image or on the host.
func TestCVE_2025_31133_SymlinkedDevAndProc(t *testing.T) {
	requireRoot(t)
	host := t.TempDir()
	writeFile(t, filepath.Join(host, "canary"), "host", 0o644)
	for _, tc := range []struct {
		name  string
		setup func(lower string)
	}{
		{"/dev/null to a file in the image", func(l string) {
			writeFile(t, filepath.Join(l, "etc/shadow"), "secret", 0o600)
			_ = os.Symlink("/etc/shadow", filepath.Join(l, "dev/null"))
		}},
		{"/dev/null to a host path", func(l string) {
			_ = os.Symlink(filepath.Join(host, "canary"), filepath.Join(l, "dev/null"))
		}},
		{"/dev/console to a host path", func(l string) {
			_ = os.Symlink(filepath.Join(host, "canary"), filepath.Join(l, "dev/console"))
		}},
		{"/dev to a host dir", func(l string) {
			_ = os.Remove(filepath.Join(l, "dev"))
			_ = os.Symlink(host, filepath.Join(l, "dev"))
		}},
		{"/proc to a host dir", func(l string) {
			_ = os.Remove(filepath.Join(l, "proc"))
			_ = os.Symlink(host, filepath.Join(l, "proc"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lower := filepath.Join(t.TempDir(), "base")
			baseLayer(t, lower)
			tc.setup(lower)
			root := newRootfs(t, lower)
			script := "echo pwned > /dev/null; echo pwned > /dev/console; ls /proc >/dev/null; true"
			_, stderr, err := run(t, root, executor.Process{Args: []string{"sh", "-c", script}}, executor.Options{})
			if err != nil {
				t.Logf("Run: %v (stderr %q)", err, stderr)
			}
			if b, _ := os.ReadFile(filepath.Join(host, "canary")); string(b) != "host" {
				t.Fatalf("a host file was written: %q", b)
			}
			if b, err := os.ReadFile(filepath.Join(lower, "etc/shadow")); err == nil && string(b) != "secret" {
				t.Fatalf("the image's file was written: %q", b)
			}
			if b, err := os.ReadFile(filepath.Join(root.Upper, "etc/shadow")); err == nil {
				t.Fatalf("/dev/null wrote through to the image's /etc/shadow: %q", b)
			}
		})
	}
}
