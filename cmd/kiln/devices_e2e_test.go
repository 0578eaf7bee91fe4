package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testLoopDevice attaches a loop device over a 1 MiB file the test made,
// starting with a canary line; never a real disk.
func testLoopDevice(t *testing.T) (dev, backing string, major, minor uint32) {
	t.Helper()
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
		for range 50 {
			if exec.Command("losetup", "-d", dev).Run() == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("could not detach %s", dev)
	})
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		t.Fatal(err)
	}
	return dev, backing, unix.Major(st.Rdev), unix.Minor(st.Rdev)
}

// Issue 7's host escape: `RUN mknod /tmp/d b 7 1` read and rewrote the
// host's loop device, and so did a device node that came in an ADDed tar.
// Now neither a RUN step nor `kiln run` can open it (device cgroup / eBPF
// filter, nodev mounts), while the image keeps the nodes as data, as
// BuildKit does.
func TestBuildAndRunCannotUseHostDevices(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, backing, major, minor := testLoopDevice(t)
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, h := range []*tar.Header{
		{Name: "devs/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "devs/disk", Typeflag: tar.TypeBlock, Mode: 0o660, Devmajor: int64(major), Devminor: int64(minor)},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	attack := func(node string) string {
		return fmt.Sprintf("(head -c 11 %s; echo; echo PWNED | dd of=%s conv=notrunc)", node, node)
	}
	dir := e.context(map[string]string{
		"Dockerfile": fmt.Sprintf(`ARG BASE
FROM $BASE
ADD devs.tar /
RUN mknod /tmp/d b %d %d && %s; %s; true
`, major, minor, attack("/tmp/d"), attack("/devs/disk")),
	})
	if err := os.WriteFile(filepath.Join(dir, "devs.tar"), tb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.mustKiln("build", "--progress=plain", "--build-arg", "BASE="+e.base, "-t", "devs", dir)
	out := r.stdout + r.stderr
	if strings.Contains(out, "CANARY") {
		t.Errorf("a RUN step read the host's loop device:\n%s", out)
	}
	if strings.Count(out, "Operation not permitted")+strings.Count(out, "Permission denied") < 4 {
		t.Errorf("want every open of the device refused:\n%s", out)
	}
	fs := files(t, e.image("devs"))
	for _, p := range []string{"/devs/disk", "/tmp/d"} {
		f, ok := fs[p]
		if !ok || f.hdr.Typeflag != tar.TypeBlock || f.hdr.Devmajor != int64(major) || f.hdr.Devminor != int64(minor) {
			t.Errorf("the image should keep %s as block device %d:%d, got %+v", p, major, minor, f.hdr)
		}
	}
	r = e.kiln("", "run", "--rm", "devs", "sh", "-c", "head -c 11 /devs/disk; echo PWNED | dd of=/devs/disk conv=notrunc")
	if strings.Contains(r.stdout, "CANARY") || r.code == 0 {
		t.Errorf("kiln run read the host's loop device: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	b, err := os.ReadFile(backing)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("CANARY-DISK\n")) {
		t.Fatalf("the host's loop device was written: %q", b[:16])
	}
}

// A fork bomb in a Dockerfile is bounded by build.pidsLimit, and a RUN
// that allocates past build.memoryLimit is killed, with a message saying so.
func TestBuildLimitsFromConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := os.WriteFile(filepath.Join(e.root, "config.json"), []byte(`{"build": {"pidsLimit": 32, "memoryLimit": "64MB"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := e.context(map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nRUN for i in $(seq 1 100); do sleep 2 & done; wait\n"})
	r := e.kiln("", "build", "--progress=plain", "--build-arg", "BASE="+e.base, dir)
	if r.code == 0 || !strings.Contains(r.stderr, "can't fork") {
		t.Errorf("100 processes ran under a limit of 32: exit %d\n%s", r.code, r.stderr)
	}
	dir = e.context(map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nRUN head -c 200000000 /dev/zero > /dev/shm/fill\n"})
	r = e.kiln("", "build", "--progress=plain", "--build-arg", "BASE="+e.base, dir)
	if r.code == 0 || !strings.Contains(r.stderr, "out of memory") || !strings.Contains(r.stderr, "64MiB") {
		t.Errorf("a RUN using 200MB passed a 64MB limit: exit %d\n%s", r.code, r.stderr)
	}
}
