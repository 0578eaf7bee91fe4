package executor_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/executor"
)

// groupsCmd prints the process's supplementary groups (the kernel's list,
// sorted), which `id -G` would blur with the primary gid.
var groupsCmd = []string{"sh", "-c", "while read k v; do if [ $k = Groups: ]; then echo $v; fi; done < /proc/self/status"}

func TestRunOutput(t *testing.T) {
	requireRoot(t)
	root := baseRootfs(t)
	tests := []struct {
		name string
		p    executor.Process
		opts executor.Options
		want string
	}{
		{"echo", executor.Process{Args: []string{"echo", "hello", "world"}}, executor.Options{}, "hello world\n"},
		{"env is exact, plus HOME", executor.Process{Args: []string{"env"}, Env: []string{"PATH=/bin", "FOO=bar baz", "EMPTY="}},
			executor.Options{}, "PATH=/bin\nFOO=bar baz\nEMPTY=\nHOME=/root\n"},
		{"HOME from env wins", executor.Process{Args: []string{"sh", "-c", "echo $HOME"}, Env: []string{"HOME=/x"}}, executor.Options{}, "/x\n"},
		{"HOME of user", executor.Process{Args: []string{"sh", "-c", "echo $HOME"}, User: "user"}, executor.Options{}, "/home/user\n"},
		{"pid 1", executor.Process{Args: []string{"sh", "-c", "echo $$"}}, executor.Options{}, "1\n"},
		{"default hostname", executor.Process{Args: []string{"hostname"}}, executor.Options{}, "buildkitsandbox\n"},
		{"hostname", executor.Process{Args: []string{"hostname"}}, executor.Options{Hostname: "box"}, "box\n"},
		{"proc", executor.Process{Args: []string{"sh", "-c", "test -d /proc/self && readlink /proc/self"}}, executor.Options{}, "1\n"},
		{"dev", executor.Process{Args: []string{"sh", "-c",
			"echo x > /dev/null && test -c /dev/zero && test -c /dev/urandom && test -d /dev/pts && test -d /dev/shm && readlink /dev/fd"}},
			executor.Options{}, "/proc/self/fd\n"},
		{"absolute path", executor.Process{Args: []string{"/bin/echo", "abs"}, Env: []string{}}, executor.Options{}, "abs\n"},
		{"default PATH", executor.Process{Args: []string{"echo", "nopath"}, Env: []string{"A=b"}}, executor.Options{}, "nopath\n"},
		{"user root", executor.Process{Args: []string{"sh", "-c", "id -u; id -g"}}, executor.Options{}, "0\n0\n"},
		{"user by name", executor.Process{Args: []string{"sh", "-c", "id -u; id -g; id -G"}, User: "user"}, executor.Options{}, "1000\n1000\n1000 10\n"},
		{"user uid:gid", executor.Process{Args: []string{"sh", "-c", "id -u; id -g"}, User: "1000:0"}, executor.Options{}, "1000\n0\n"},
		// The primary gid always leads the groups, as with BuildKit.
		{"groups of root", executor.Process{Args: groupsCmd}, executor.Options{}, "0\n"},
		{"groups of uid:gid", executor.Process{Args: groupsCmd, User: "1000:0"}, executor.Options{}, "0\n"},
		{"groups of unknown uid", executor.Process{Args: groupsCmd, User: "4321"}, executor.Options{}, "0\n"},
		{"groups of user:group", executor.Process{Args: groupsCmd, User: "0:1000"}, executor.Options{}, "1000\n"},
		{"groups of user", executor.Process{Args: groupsCmd, User: "user"}, executor.Options{}, "10 1000\n"},
		{"stdin", executor.Process{Args: []string{"cat"}, Stdin: strings.NewReader("from stdin\n")}, executor.Options{}, "from stdin\n"},
		{"existing cwd", executor.Process{Args: []string{"pwd"}, Cwd: "/tmp"}, executor.Options{}, "/tmp\n"},
		// Docker's default capability set, nothing more.
		{"capabilities", executor.Process{Args: []string{"sh", "-c",
			"while read k v; do if [ $k = CapBnd: ]; then echo $v; fi; done < /proc/self/status"}}, executor.Options{}, "00000000a80425fb\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := run(t, root, tt.p, tt.opts)
			if err != nil {
				t.Fatalf("Run: %v (stderr %q)", err, stderr)
			}
			if stdout != tt.want {
				t.Errorf("stdout = %q, want %q (stderr %q)", stdout, tt.want, stderr)
			}
		})
	}
	// None of that may leave anything in the layer.
	if got := tree(t, root.Upper); len(got) != 0 {
		t.Errorf("upper dir not empty after read-only commands:\n%s", strings.Join(got, "\n"))
	}
}

func TestRunStdoutFile(t *testing.T) {
	requireRoot(t)
	root := baseRootfs(t)
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := executor.Run(t.Context(), root, executor.Process{Args: []string{"echo", "to file"}, Env: []string{"PATH=/bin"}, Stdout: f}, executor.Options{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "to file\n" {
		t.Errorf("file content = %q", b)
	}
}

func TestRunExitCodes(t *testing.T) {
	requireRoot(t)
	root := baseRootfs(t)
	tests := []struct {
		name       string
		args       []string
		code       int
		wantStderr string
	}{
		{"exit 3", []string{"sh", "-c", "exit 3"}, 3, ""},
		{"false", []string{"false"}, 1, ""},
		{"not in PATH", []string{"nonexistent-cmd"}, 127, "exec: nonexistent-cmd: not found\n"},
		{"missing path", []string{"/no/such/bin"}, 127, "exec: /no/such/bin: no such file or directory\n"},
		{"not executable", []string{"/etc/passwd"}, 126, "exec: /etc/passwd: permission denied\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, err := run(t, root, executor.Process{Args: tt.args}, executor.Options{})
			var ee *executor.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("err = %v (%T), want *ExitError", err, err)
			}
			if ee.Code != tt.code {
				t.Errorf("code = %d, want %d", ee.Code, tt.code)
			}
			if stderr != tt.wantStderr {
				t.Errorf("stderr = %q, want %q", stderr, tt.wantStderr)
			}
		})
	}
}

func TestExitErrorMessage(t *testing.T) {
	tests := []struct {
		code int
		want string
	}{
		{3, "process exited with code 3"},
		{127, "process exited with code 127"},
		{137, "process killed by signal SIGKILL"},
		{143, "process killed by signal SIGTERM"},
	}
	for _, tt := range tests {
		if got := (&executor.ExitError{Code: tt.code}).Error(); got != tt.want {
			t.Errorf("ExitError{%d} = %q, want %q", tt.code, got, tt.want)
		}
	}
}

func TestRunSetupErrors(t *testing.T) {
	requireRoot(t)
	root := baseRootfs(t)
	tests := []struct {
		name string
		p    executor.Process
		want string
	}{
		{"unknown user", executor.Process{Args: []string{"true"}, User: "nobody-here"}, `user "nobody-here"`},
		{"cwd is a file", executor.Process{Args: []string{"true"}, Cwd: "/etc/passwd"}, "working directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := run(t, root, tt.p, executor.Options{})
			var ee *executor.ExitError
			if err == nil || errors.As(err, &ee) {
				t.Fatalf("err = %v, want a setup error", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to mention %q", err, tt.want)
			}
		})
	}
	bad := root
	bad.Lowers = []string{filepath.Join(t.TempDir(), "missing")}
	if _, _, err := run(t, bad, executor.Process{Args: []string{"true"}}, executor.Options{}); err == nil || !strings.Contains(err.Error(), "mount overlay") {
		t.Errorf("missing lower: err = %v, want an overlay mount error", err)
	}
}

// TestRunUpperDiff checks the upper dir holds exactly the changes, in
// overlay format, and no trace of the container's own mounts.
func TestRunUpperDiff(t *testing.T) {
	requireRoot(t)
	lower := filepath.Join(t.TempDir(), "base")
	baseLayer(t, lower)
	writeFile(t, filepath.Join(lower, "data/file"), "old", 0o644)
	writeFile(t, filepath.Join(lower, "data/keep"), "keep", 0o644)
	writeFile(t, filepath.Join(lower, "olddir/a"), "a", 0o644)
	writeFile(t, filepath.Join(lower, "etc/resolv.conf"), "nameserver 192.0.2.1\n", 0o644)
	root := newRootfs(t, lower)
	script := "echo hi > /new && rm /data/file && rm -r /olddir && mkdir /olddir && touch /olddir/b && " +
		"cat /etc/resolv.conf > /dev/null && ls /proc /sys /dev > /dev/null"
	if _, stderr, err := run(t, root, executor.Process{Args: []string{"sh", "-c", script}}, executor.Options{}); err != nil {
		t.Fatalf("Run: %v (stderr %q)", err, stderr)
	}
	got := tree(t, root.Upper)
	// Directory modes and owners are copied up from the lower.
	want := []string{
		`data dir 0755 0:0`,
		`data/file chardev 0000 0:0 0/0`,
		`new file 0644 0:0 "hi\n"`,
		`olddir dir 0755 0:0 trusted.overlay.opaque=y`,
		`olddir/b file 0644 0:0 ""`,
	}
	if d := diffLines(want, got); d != "" {
		t.Error(d)
	}
}

func TestRunCwdCreated(t *testing.T) {
	requireRoot(t)
	root := baseRootfs(t)
	stdout, stderr, err := run(t, root, executor.Process{Args: []string{"pwd"}, Cwd: "/work/sub", User: "user"}, executor.Options{})
	if err != nil {
		t.Fatalf("Run: %v (stderr %q)", err, stderr)
	}
	if stdout != "/work/sub\n" {
		t.Errorf("pwd = %q", stdout)
	}
	want := []string{"work dir 0755 0:0", "work/sub dir 0755 0:0"}
	if d := diffLines(want, tree(t, root.Upper)); d != "" {
		t.Error(d)
	}
}

func TestRunScratch(t *testing.T) {
	requireRoot(t)
	root := newRootfs(t)
	_, stderr, err := run(t, root, executor.Process{Args: []string{"/bin/sh"}}, executor.Options{})
	var ee *executor.ExitError
	if !errors.As(err, &ee) || ee.Code != 127 {
		t.Fatalf("err = %v, want exit code 127 (stderr %q)", err, stderr)
	}
	if got := tree(t, root.Upper); len(got) != 0 {
		t.Errorf("upper dir of scratch not empty:\n%s", strings.Join(got, "\n"))
	}
}

func TestRunNetworkNone(t *testing.T) {
	requireRoot(t)
	root := baseRootfs(t)
	script := "ls /sys/class/net; while read l; do case $l in *:*) echo ${l%%:*};; esac; done < /proc/net/dev; cat /sys/class/net/lo/flags"
	stdout, stderr, err := run(t, root, executor.Process{Args: []string{"sh", "-c", script}}, executor.Options{Network: "none"})
	if err != nil {
		t.Fatalf("Run: %v (stderr %q)", err, stderr)
	}
	// lo is listed by sysfs, then by /proc/net/dev; flags 0x9 = IFF_UP|IFF_LOOPBACK.
	if want := "lo\nlo\n0x9\n"; stdout != want {
		t.Errorf("output = %q, want %q", stdout, want)
	}
	if _, _, err := run(t, root, executor.Process{Args: []string{"true"}}, executor.Options{Network: "bridge"}); err == nil {
		t.Error("unknown network mode accepted")
	}
}

func TestRunCancel(t *testing.T) {
	requireRoot(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where Run puts its mount point
	root := baseRootfs(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	var stderr bytes.Buffer
	go func() {
		done <- executor.Run(ctx, root, executor.Process{
			Args: []string{"sh", "-c", "sleep 9871 & sleep 9872"}, Env: []string{"PATH=/bin"}, Stderr: &stderr,
		}, executor.Options{})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for len(sleepers(t)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("sleeps did not start (stderr %q)", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of cancel")
	}
	if left := sleepers(t); len(left) != 0 {
		t.Errorf("processes left behind: %v", left)
	}
	if m := mountsUnder(t, tmp, root.Upper, root.Lowers[0]); len(m) != 0 {
		t.Errorf("mounts left on the host:\n%s", strings.Join(m, "\n"))
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("temp dirs left behind: %v", ents)
	}
}

// sleepers returns the pids of the test's sleep processes.
func sleepers(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if s := string(b); s == "sleep\x009871\x00" || s == "sleep\x009872\x00" {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

func TestRunStdinNeverClosed(t *testing.T) {
	requireRoot(t)
	root := baseRootfs(t)
	r, w := io.Pipe()
	defer w.Close()
	start := time.Now()
	// The process ignores stdin and exits; Run must not wait for the reader.
	if _, _, err := run(t, root, executor.Process{Args: []string{"true"}, Stdin: r}, executor.Options{}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Run took %v", d)
	}
}

func TestCancelledBeforeStart(t *testing.T) {
	requireRoot(t)
	root := baseRootfs(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := executor.Run(ctx, root, executor.Process{Args: []string{"true"}}, executor.Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Run: err = %v, want context.Canceled", err)
	}
	if err := executor.Apply(ctx, root, executor.FileOp{Mkdir: &executor.MkdirOp{Path: "/x"}}); !errors.Is(err, context.Canceled) {
		t.Errorf("Apply: err = %v, want context.Canceled", err)
	}
	noUpper := root
	noUpper.Upper = ""
	if err := executor.Run(t.Context(), noUpper, executor.Process{Args: []string{"true"}}, executor.Options{}); err == nil {
		t.Error("Run without an upper dir succeeded")
	}
}
