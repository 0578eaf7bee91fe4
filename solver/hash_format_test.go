//go:build linux

package solver

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/executor/fscopy"
	"github.com/kiln-build/kiln/xattr"
)

// referenceLine is how a context entry was described when cache keys were
// first defined (with fmt); the fast path must give the same bytes, or
// every cached build would miss once, and keys would change meaning.
func referenceLine(t *testing.T, p, rel string, fi os.FileInfo) string {
	t.Helper()
	st := fi.Sys().(*syscall.Stat_t)
	typ := map[uint32]string{syscall.S_IFREG: "f", syscall.S_IFDIR: "d", syscall.S_IFLNK: "l",
		syscall.S_IFIFO: "p", syscall.S_IFCHR: "c", syscall.S_IFBLK: "b", syscall.S_IFSOCK: "s"}[st.Mode&syscall.S_IFMT]
	entry := fmt.Sprintf("%s %04o %d:%d", typ, st.Mode&^syscall.S_IFMT, st.Uid, st.Gid)
	switch typ {
	case "l":
		target, err := os.Readlink(p)
		if err != nil {
			t.Fatal(err)
		}
		entry += fmt.Sprintf(" -> %q", target)
	case "c", "b":
		entry += fmt.Sprintf(" %d,%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	case "f":
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		return fmt.Sprintf("%q %s\n", rel, entry+fmt.Sprintf(" %d %x%s", fi.Size(), sum, referenceXattrs(t, p)))
	}
	return fmt.Sprintf("%q %s\n", rel, entry+referenceXattrs(t, p))
}

// referenceXattrs is the xattr part of a line, as first defined.
func referenceXattrs(t *testing.T, p string) string {
	t.Helper()
	names, err := xattr.List(p)
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, name := range names {
		if name != "security.selinux" && !strings.HasPrefix(name, "trusted.overlay.") {
			keep = append(keep, name)
		}
	}
	if len(keep) == 0 {
		return ""
	}
	sort.Strings(keep)
	h := sha256.New()
	for _, name := range keep {
		v, err := xattr.Get(p, name)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%q %q\n", name, v)
	}
	return fmt.Sprintf(" x:%x", h.Sum(nil))[:35]
}

func TestSelectionDigestFormat(t *testing.T) {
	dir := t.TempDir()
	for p, c := range map[string]string{"a": "alpha", "sub dir/b\"q\"": "beta", "sub dir/ünï": "", "x/y/z": "zed"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../a\n", filepath.Join(dir, "x/link")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "x/fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "x/y"), 0o2750); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := unix.Mknod(filepath.Join(dir, "x/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"x", "a", "x/y/z"} {
			if err := unix.Lsetxattr(filepath.Join(dir, p), "user.k", []byte("v\x00\"q"), 0); err != nil && err != unix.ENOTSUP {
				t.Fatal(err)
			}
		}
		if err := unix.Lsetxattr(filepath.Join(dir, "a"), "user.b", []byte("second"), 0); err != nil && err != unix.ENOTSUP {
			t.Fatal(err)
		}
	}
	o := fscopy.Options{Sources: []string{"."}, Dest: "/"}
	want := sha256.New()
	n := 0
	err := fscopy.Walk(context.Background(), dir, o, func(rel string, fi os.FileInfo) error {
		want.Write([]byte(referenceLine(t, filepath.Join(dir, rel), rel, fi)))
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("walked only %d entries", n)
	}
	for _, dirArg := range []string{dir, dir + "/", dir + "/x/.."} {
		got, err := HashSelection(context.Background(), dirArg, o)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(digest.FromHash(want)) {
			t.Errorf("HashSelection(%s) = %s, reference %s", dirArg, got, digest.FromHash(want))
		}
	}
}
