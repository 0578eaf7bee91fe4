package executor

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// loopDevice attaches a loop device over a 1 MiB file the test made, with
// known content at its start, and returns the device path and the file.
// It never touches a real disk.
func loopDevice(t *testing.T) (dev, backing string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: attaches a loop device")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("needs losetup (util-linux)")
	}
	backing = filepath.Join(t.TempDir(), "disk.img")
	img := make([]byte, 1<<20)
	copy(img, "CANARY-DISK\n")
	if err := os.WriteFile(backing, img, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", backing).Output()
	if err != nil {
		t.Skipf("no loop device available: %v", err)
	}
	dev = strings.TrimSpace(string(out))
	t.Cleanup(func() {
		for range 50 { // the kernel may hold it a moment after its last user
			if exec.Command("losetup", "-d", dev).Run() == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("could not detach %s", dev)
	})
	return dev, backing
}

// inCgroup runs argv in cg on the host (no namespaces): it is held on its
// stdin until it has been moved into the cgroup.
func inCgroup(t *testing.T, cg *cgroup, script string) (string, error) {
	t.Helper()
	cmd := exec.Command("/bin/busybox", "sh", "-c", "read go; "+script)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := cg.add(cmd.Process.Pid); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal(err)
	}
	_, _ = in.Write([]byte("go\n"))
	in.Close()
	err = cmd.Wait()
	return out.String(), err
}

// Each layer of the device defence on its own: the v1 devices controller
// alone, and the cgroup v2 eBPF filter alone (what a pure v2 host gets),
// each keeps a root process on the host from opening a block device while
// the allowed character devices still work.
func TestDeviceRulesEachHierarchy(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox")
	}
	dev, backing := loopDevice(t)
	hs, err := hierarchies()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		keep func(hierarchy) bool
	}{
		{"v1 devices controller", func(h hierarchy) bool { return !h.v2 && h.has("devices") }},
		{"cgroup2 eBPF filter", func(h hierarchy) bool { return h.v2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var only []hierarchy
			for _, h := range hs {
				if tc.keep(h) {
					only = append(only, h)
				}
			}
			if len(only) == 0 {
				t.Skipf("this machine has no %s", tc.name)
			}
			cg, err := newCgroupIn(only, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := cg.remove(); err != nil {
					t.Error(err)
				}
			}()
			bb := "/bin/busybox "
			out, err := inCgroup(t, cg, bb+"head -c 11 "+dev+"; echo; echo PWNED | "+bb+"dd of="+dev+" conv=notrunc 2>&1; "+
				bb+"mknod /tmp/kiln-test-null-$$ c 1 3 && echo made; "+bb+"rm -f /tmp/kiln-test-null-$$; "+
				"echo ok > /dev/null && "+bb+"head -c 4 /dev/zero | "+bb+"wc -c && "+bb+"head -c 4 /dev/urandom | "+bb+"wc -c")
			if err != nil {
				t.Logf("script: %v: %s", err, out)
			}
			if strings.Contains(out, "CANARY-DISK") {
				t.Errorf("read the host's loop device through the cgroup:\n%s", out)
			}
			if !strings.Contains(out, "made") {
				t.Errorf("mknod is allowed (images keep device nodes as data), got:\n%s", out)
			}
			if strings.Count(out, "4\n") != 2 {
				t.Errorf("/dev/zero and /dev/urandom must stay usable, got:\n%s", out)
			}
			b, err := os.ReadFile(backing)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, []byte("CANARY-DISK\n")) {
				t.Fatalf("the loop device's backing file changed: %q", b[:16])
			}
			for _, d := range cg.dirs {
				if _, err := os.Stat(d); err != nil {
					t.Errorf("cgroup %s: %v", d, err)
				}
			}
		})
	}
}

// The device filter program allows exactly docker's list.
func TestDeviceRuleText(t *testing.T) {
	var got []string
	for _, r := range allowedDevices {
		got = append(got, r.String())
	}
	want := "c *:* m|b *:* m|c 1:3 rwm|c 1:5 rwm|c 1:7 rwm|c 1:8 rwm|c 1:9 rwm|c 5:0 rwm|c 5:1 rwm|c 5:2 rwm|c 136:* rwm"
	if strings.Join(got, "|") != want {
		t.Errorf("rules = %s, want %s", strings.Join(got, "|"), want)
	}
	if n := len(deviceFilter(allowedDevices)); n > 200 {
		t.Errorf("device filter has %d instructions", n)
	}
}

// A cgroup is gone once removed, and remove kills what was still in it.
func TestCgroupRemoveKills(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates cgroups")
	}
	cg, err := newCgroup(Limits{Pids: 64})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/busybox", "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := cg.add(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	dirs := append([]string(nil), cg.dirs...)
	if err := cg.remove(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Error("the process in the cgroup survived its removal")
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s is still there", d)
		}
	}
}

func TestMountinfoUnescape(t *testing.T) {
	if got := unescapeMountinfo(`/a\040b\011c`); got != "/a b\tc" {
		t.Errorf("got %q", got)
	}
}

// LoopDeviceForTest is loopDevice for the package's external tests.
func LoopDeviceForTest(t *testing.T) (dev, backing string) { return loopDevice(t) }
