package executor_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/executor"
)

// A RUN step cannot read or write a host block device, wherever the node
// comes from: made with mknod (in the rootfs, in /dev, in a tmpfs mount),
// shipped in an image layer, or present in a bind-mounted host directory
// (issue 7: `RUN mknod /tmp/d b 7 1` read and rewrote the host's loop
// device). The nodes themselves are allowed, as data.
func TestRunCannotUseHostDevices(t *testing.T) {
	requireRoot(t)
	dev, backing := executor.LoopDeviceForTest(t)
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		t.Fatal(err)
	}
	major, minor := unix.Major(st.Rdev), unix.Minor(st.Rdev)
	mknod := func(p string) {
		t.Helper()
		mustMkdir(t, filepath.Dir(p), 0o755)
		if err := unix.Mknod(p, unix.S_IFBLK|0o666, int(unix.Mkdev(major, minor))); err != nil {
			t.Fatal(err)
		}
	}
	nodeArgs := " b " + strconv.FormatUint(uint64(major), 10) + " " + strconv.FormatUint(uint64(minor), 10)
	attack := func(node string) string {
		return "head -c 11 " + node + "; echo; echo PWNED | dd of=" + node + " conv=notrunc; true"
	}
	for _, tc := range []struct {
		name   string
		setup  func(lower, host string) []executor.Mount
		script string
	}{
		{"mknod in the rootfs", nil, "mknod /tmp/d" + nodeArgs + " && " + attack("/tmp/d")},
		{"mknod in /dev", nil, "mknod /dev/d" + nodeArgs + " && " + attack("/dev/d")},
		{"mknod in a tmpfs mount", func(_, _ string) []executor.Mount {
			return []executor.Mount{{Type: "tmpfs", Target: "/scratch"}}
		}, "mknod /scratch/d" + nodeArgs + " && " + attack("/scratch/d")},
		{"node in an image layer", func(lower, _ string) []executor.Mount {
			mknod(filepath.Join(lower, "var/disk"))
			return nil
		}, attack("/var/disk")},
		{"node in a bind mount", func(_, host string) []executor.Mount {
			mknod(filepath.Join(host, "disk"))
			return []executor.Mount{{Type: "bind", Source: host, Target: "/mnt/host"}}
		}, attack("/mnt/host/disk")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lower := filepath.Join(t.TempDir(), "base")
			baseLayer(t, lower)
			var mounts []executor.Mount
			if tc.setup != nil {
				mounts = tc.setup(lower, t.TempDir())
			}
			root := newRootfs(t, lower)
			stdout, stderr, err := run(t, root, executor.Process{Args: []string{"sh", "-c", tc.script}}, executor.Options{Mounts: mounts})
			if err != nil {
				t.Fatalf("Run: %v (stderr %q)", err, stderr)
			}
			if strings.Contains(stdout, "CANARY") {
				t.Errorf("read the host's loop device: %q", stdout)
			}
			b, err := os.ReadFile(backing)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, []byte("CANARY-DISK\n")) {
				t.Fatalf("the host's loop device was written: %q", b[:16])
			}
			if !strings.Contains(stderr, "not permitted") && !strings.Contains(stderr, "denied") {
				t.Errorf("want the open refused, stderr %q", stderr)
			}
		})
	}
}

// The devices docker allows still work: null, zero, full, random,
// urandom, tty exist; ptmx opens a pty.
func TestRunAllowedDevices(t *testing.T) {
	requireRoot(t)
	script := `for d in null zero full random urandom tty; do test -c /dev/$d || echo "missing $d"; done
echo x > /dev/null || echo "null not writable"
test "$(head -c 3 /dev/zero | wc -c)" = 3 || echo "zero not readable"
test "$(head -c 3 /dev/urandom | wc -c)" = 3 || echo "urandom not readable"
echo x > /dev/full 2>/dev/null && echo "full accepted a write"
exec 3<>/dev/ptmx || echo "ptmx did not open"
echo done`
	stdout, stderr, err := run(t, baseRootfs(t), executor.Process{Args: []string{"sh", "-c", script}}, executor.Options{})
	if err != nil || stdout != "done\n" {
		t.Fatalf("Run: %v, stdout %q, stderr %q", err, stdout, stderr)
	}
}

// Every mount a RUN step sees is nodev but the device nodes kiln binds
// into /dev and the devpts instance: the first layer of the device
// defence, the one that holds in a user namespace too.
func TestRunMountsAreNodev(t *testing.T) {
	requireRoot(t)
	host := t.TempDir()
	writeFile(t, filepath.Join(host, "f"), "x", 0o644)
	mounts := []executor.Mount{
		{Type: "bind", Source: host, Target: "/mnt/rw"},
		{Type: "bind", Source: host, Target: "/mnt/ro", ReadOnly: true},
		{Type: "bind", Source: filepath.Join(host, "f"), Target: "/mnt/file"},
		{Type: "tmpfs", Target: "/mnt/tmp"},
	}
	stdout, stderr, err := run(t, baseRootfs(t), executor.Process{Args: []string{"cat", "/proc/self/mountinfo"}}, executor.Options{Mounts: mounts})
	if err != nil {
		t.Fatalf("Run: %v (stderr %q)", err, stderr)
	}
	devBinds := map[string]bool{"/dev/null": true, "/dev/zero": true, "/dev/full": true, "/dev/random": true, "/dev/urandom": true, "/dev/tty": true}
	seen := 0
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			continue
		}
		mnt, opts := f[4], f[5]
		// Masked /proc files are binds of /dev/null too.
		if devBinds[mnt] || mnt == "/dev/pts" || strings.HasPrefix(mnt, "/proc/") && strings.Contains(l, " - devtmpfs ") {
			continue
		}
		if !strings.Contains(","+opts+",", ",nodev,") {
			t.Errorf("mount %s is not nodev: %s", mnt, l)
		}
		seen++
	}
	if seen < 8 {
		t.Errorf("only %d mounts checked:\n%s", seen, stdout)
	}
}
