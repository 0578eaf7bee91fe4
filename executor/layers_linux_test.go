package executor_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/executor"
)

// TestRunManyLowers mounts long chains of layers with long snapshot paths:
// 60 fit in mount(2)'s one-page option string only relative to their parent
// dir, 150 do not fit at all and need the new mount API (tried with
// overlayfs's separators in the path too).
func TestRunManyLowers(t *testing.T) {
	requireRoot(t)
	for _, tt := range []struct {
		n    int
		name string
	}{{60, "snapshots"}, {150, "snapshots"}, {150, `snap:sh,ots\`}} {
		n := tt.n
		t.Run(fmt.Sprint(n, tt.name), func(t *testing.T) {
			snaps := filepath.Join(t.TempDir(), tt.name)
			var lowers []string
			for i := range n {
				sum := sha256.Sum256([]byte(fmt.Sprint(i)))
				dir := filepath.Join(snaps, hex.EncodeToString(sum[:]))
				if i == 0 {
					baseLayer(t, dir)
				}
				writeFile(t, filepath.Join(dir, "layers", fmt.Sprint(i)), fmt.Sprint(i), 0o644)
				// Every layer overwrites /top: the last one must win.
				writeFile(t, filepath.Join(dir, "top"), fmt.Sprint(i), 0o644)
				lowers = append(lowers, dir)
			}
			root := newRootfs(t, lowers...)
			stdout, stderr, err := run(t, root, executor.Process{Args: []string{"sh", "-c", "ls /layers | wc -l; cat /top"}}, executor.Options{})
			if err != nil {
				t.Fatalf("Run: %v (stderr %q)", err, stderr)
			}
			if want := fmt.Sprintf("%d\n%d", n, n-1); strings.TrimSpace(stdout) != want {
				t.Errorf("output = %q, want %q", stdout, want)
			}
		})
	}
}

// The same layer twice in a chain (two steps with identical diffs) must
// mount, and read as the stack it is.
func TestRunDuplicateLower(t *testing.T) {
	requireRoot(t)
	d := t.TempDir()
	base, a, b := filepath.Join(d, "base"), filepath.Join(d, "a"), filepath.Join(d, "b")
	baseLayer(t, base)
	writeFile(t, filepath.Join(a, "x"), "a", 0o644)
	writeFile(t, filepath.Join(b, "x"), "b", 0o644)
	writeFile(t, filepath.Join(b, "y"), "b", 0o644)
	root := newRootfs(t, base, a, b, a)
	stdout, stderr, err := run(t, root, executor.Process{Args: []string{"sh", "-c", "cat /x /y"}}, executor.Options{})
	if err != nil {
		t.Fatalf("Run: %v (stderr %q)", err, stderr)
	}
	if stdout != "ab" {
		t.Errorf("output = %q, want %q", stdout, "ab")
	}
}

// TestRunOddPaths uses snapshot paths containing overlayfs's option
// separators, which must be escaped.
func TestRunOddPaths(t *testing.T) {
	requireRoot(t)
	d := t.TempDir()
	base := filepath.Join(d, "base:1,x")
	baseLayer(t, base)
	top := filepath.Join(d, `top\2`)
	writeFile(t, filepath.Join(top, "hello"), "hi", 0o644)
	root := executor.Rootfs{Lowers: []string{base, top}, Upper: filepath.Join(d, "up,per"), Work: filepath.Join(d, "wo:rk")}
	mustMkdir(t, root.Upper, 0o755)
	mustMkdir(t, root.Work, 0o755)
	stdout, stderr, err := run(t, root, executor.Process{Args: []string{"sh", "-c", "cat /hello; touch /new"}}, executor.Options{})
	if err != nil {
		t.Fatalf("Run: %v (stderr %q)", err, stderr)
	}
	if stdout != "hi" {
		t.Errorf("output = %q", stdout)
	}
	if _, err := os.Stat(filepath.Join(root.Upper, "new")); err != nil {
		t.Errorf("change not in upper: %v", err)
	}
}

// TestRunHostFiles checks every container gets the host's resolv.conf and
// a generated hosts file naming its host name, read-only, whether the image
// has them or not, and that neither ends up in the layer.
func TestRunHostFiles(t *testing.T) {
	requireRoot(t)
	hostResolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Skip("host has no /etc/resolv.conf")
	}
	for _, tt := range []struct {
		name  string
		files bool // the image has its own resolv.conf and hosts
		opts  executor.Options
		host  string
	}{
		{"image has them", true, executor.Options{}, "buildkitsandbox"},
		{"image lacks them", false, executor.Options{Hostname: "box"}, "box"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lower := filepath.Join(t.TempDir(), "base")
			baseLayer(t, lower)
			if tt.files {
				writeFile(t, filepath.Join(lower, "etc/resolv.conf"), "nameserver 192.0.2.1\n", 0o644)
				writeFile(t, filepath.Join(lower, "etc/hosts"), "192.0.2.2 image\n", 0o644)
			}
			root := newRootfs(t, lower)
			script := "cat /etc/resolv.conf; echo --; cat /etc/hosts; echo x >> /etc/hosts && echo writable; true"
			stdout, stderr, err := run(t, root, executor.Process{Args: []string{"sh", "-c", script}}, tt.opts)
			if err != nil {
				t.Fatalf("Run: %v (stderr %q)", err, stderr)
			}
			want := string(hostResolv) + "--\n127.0.0.1\tlocalhost " + tt.host + "\n::1\tlocalhost ip6-localhost ip6-loopback\n"
			if stdout != want {
				t.Errorf("container's resolv.conf and hosts =\n%s\nwant\n%s", stdout, want)
			}
			if !strings.Contains(stderr, "Read-only file system") {
				t.Errorf("stderr = %q, want a read-only error", stderr)
			}
			if got := tree(t, root.Upper); len(got) != 0 {
				t.Errorf("upper not empty:\n%s", strings.Join(got, "\n"))
			}
		})
	}
}

// TestRunMaskedPaths checks host details in /proc are hidden or read-only.
func TestRunMaskedPaths(t *testing.T) {
	requireRoot(t)
	root := baseRootfs(t)
	script := "cat /proc/kcore | wc -c; echo 1 > /proc/sys/kernel/ns_last_pid || echo ro"
	stdout, _, err := run(t, root, executor.Process{Args: []string{"sh", "-c", script}}, executor.Options{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if f := strings.Fields(stdout); len(f) != 2 || f[0] != "0" || f[1] != "ro" {
		t.Errorf("output = %q, want an empty /proc/kcore and a read-only /proc/sys", stdout)
	}
}

// TestRunNoMountLeak checks nothing the container mounted reaches the host.
func TestRunNoMountLeak(t *testing.T) {
	requireRoot(t)
	root := baseRootfs(t)
	if _, _, err := run(t, root, executor.Process{Args: []string{"true"}}, executor.Options{}); err != nil {
		t.Fatal(err)
	}
	if m := mountsUnder(t, root.Upper, root.Lowers[0], os.TempDir()+"/kiln-exec-"); len(m) != 0 {
		t.Errorf("host mounts from the container:\n%s", strings.Join(m, "\n"))
	}
}
