//go:build linux

package xattr

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestListAndGet(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if names, err := List(p); err != nil || len(names) != 0 {
		t.Fatalf("List of a fresh file = %v, %v", names, err)
	}
	long := strings.Repeat("v", 1000)
	// Two long names overflow FList's first 256-byte buffer; a long value
	// makes Get size its buffer.
	for name, val := range map[string]string{"user.a": "1", "user.x-" + strings.Repeat("n", 200): long, "user.y-" + strings.Repeat("n", 200): "2"} {
		if err := unix.Lsetxattr(p, name, []byte(val), 0); err != nil {
			t.Skipf("no user xattrs here: %v", err)
		}
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	byPath, err := List(p)
	if err != nil {
		t.Fatal(err)
	}
	byFd, err := FList(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(byPath)
	slices.Sort(byFd)
	if len(byPath) != 3 || !slices.Equal(byPath, byFd) {
		t.Fatalf("List = %v, FList = %v", byPath, byFd)
	}
	for _, n := range byPath {
		v1, err1 := Get(p, n)
		v2, err2 := FGet(int(f.Fd()), n)
		if err1 != nil || err2 != nil || string(v1) != string(v2) || len(v1) == 0 {
			t.Errorf("%s: Get %q %v, FGet %q %v", n, v1, err1, v2, err2)
		}
	}
	if _, err := Get(p, "user.missing"); err == nil {
		t.Error("Get of a missing xattr: no error")
	}
}
