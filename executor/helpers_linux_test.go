package executor_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/xattr"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts overlayfs and creates namespaces")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (busybox-static) to build test rootfs layers")
	}
}

var applets = []string{"sh", "ls", "cat", "echo", "id", "mkdir", "rm", "touch", "sleep", "hostname", "wc",
	"pwd", "env", "test", "true", "false", "readlink", "kill", "mknod", "head", "dd", "ln", "grep", "mount", "unshare", "seq"}

// baseLayer writes a tiny rootfs into dir: a static busybox with applet
// links, passwd/group files and the usual mount point dirs.
func baseLayer(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{"bin", "etc", "proc", "dev", "sys", "tmp", "root", "home/user"} {
		mustMkdir(t, filepath.Join(dir, d), 0o755)
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "bin/busybox"), string(bb), 0o755)
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(dir, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n", 0o644)
	writeFile(t, filepath.Join(dir, "etc/group"), "root:x:0:\nwheel:x:10:user\nuser:x:1000:\n", 0o644)
}

func mustMkdir(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(p, mode); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	mustMkdir(t, filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// newRootfs returns a Rootfs over lowers with fresh upper and work dirs.
func newRootfs(t *testing.T, lowers ...string) executor.Rootfs {
	t.Helper()
	d := t.TempDir()
	r := executor.Rootfs{Lowers: lowers, Upper: filepath.Join(d, "upper"), Work: filepath.Join(d, "work")}
	mustMkdir(t, r.Upper, 0o755)
	mustMkdir(t, r.Work, 0o755)
	return r
}

// baseRootfs is newRootfs over one fresh base layer.
func baseRootfs(t *testing.T) executor.Rootfs {
	t.Helper()
	lower := filepath.Join(t.TempDir(), "base")
	baseLayer(t, lower)
	return newRootfs(t, lower)
}

// run runs args in root and returns stdout and stderr.
func run(t *testing.T, root executor.Rootfs, p executor.Process, opts executor.Options) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if p.Stdout == nil {
		p.Stdout = &stdout
	}
	if p.Stderr == nil {
		p.Stderr = &stderr
	}
	if p.Env == nil {
		p.Env = []string{"PATH=/bin"}
	}
	err := executor.Run(t.Context(), root, p, opts)
	return stdout.String(), stderr.String(), err
}

// tree describes every entry under dir, one line each, sorted, for exact
// comparisons of upper dirs: "path type mode uid:gid [content|target] [xattrs]".
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		line := fmt.Sprintf("%s %s %04o %d:%d", rel, fileType(st), st.Mode&0o7777, st.Uid, st.Gid)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %q", b)
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case unix.S_IFCHR:
			line += fmt.Sprintf(" %d/%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		for _, x := range overlayXattrs(t, p) {
			line += " " + x
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func fileType(st unix.Stat_t) string {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFREG:
		return "file"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFCHR:
		return "chardev"
	}
	return "other"
}

// overlayXattrs lists trusted.overlay.* xattrs as name=value, ignoring the
// bookkeeping ones a layer differ skips anyway (origin, impure).
func overlayXattrs(t *testing.T, p string) []string {
	t.Helper()
	names, err := xattr.List(p)
	if err != nil {
		t.Fatalf("listxattr %s: %v", p, err)
	}
	var out []string
	for _, name := range names {
		if !strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		if name == "trusted.overlay.origin" || name == "trusted.overlay.impure" {
			continue
		}
		val, err := xattr.Get(p, name)
		if err != nil {
			t.Fatalf("getxattr %s %s: %v", p, name, err)
		}
		out = append(out, name+"="+string(val))
	}
	sort.Strings(out)
	return out
}

func diffLines(want, got []string) string {
	if strings.Join(want, "\n") == strings.Join(got, "\n") {
		return ""
	}
	return fmt.Sprintf("want:\n  %s\ngot:\n  %s", strings.Join(want, "\n  "), strings.Join(got, "\n  "))
}

// mountsUnder returns the host mount table lines that mention any of dirs.
func mountsUnder(t *testing.T, dirs ...string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		for _, d := range dirs {
			if d != "" && strings.Contains(l, d) {
				out = append(out, l)
			}
		}
	}
	return out
}
