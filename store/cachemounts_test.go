//go:build linux

package store

import (
	"os"
	"testing"
)

// TestCacheMounts is the conformance suite of CacheMounts: one directory
// per id and instance, made once with its mode and owner, and a lock per
// instance.
func TestCacheMounts(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	cm := s.CacheMounts()
	uid, gid := os.Getuid(), os.Getgid()
	d, err := cm.Dir("go-build", 0, 0o750, uid, gid)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(d); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 {
		t.Fatalf("cache mount dir: %v, %v", fi, err)
	}
	if err := os.WriteFile(d+"/obj", []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	if again, err := cm.Dir("go-build", 0, 0o700, uid, gid); err != nil || again != d {
		t.Errorf("Dir again = %s, %v; want %s", again, err, d)
	}
	if b, err := os.ReadFile(d + "/obj"); err != nil || string(b) != "kept" {
		t.Errorf("the cache mount lost its content: %v", err)
	}
	if p, err := cm.Dir("go-build", 1, 0o755, uid, gid); err != nil || p == d {
		t.Errorf("instance 1 = %s, %v: want a dir of its own", p, err)
	}
	if o, err := cm.Dir("../../etc", 0, 0o755, uid, gid); err != nil || o == d {
		t.Errorf("another id = %s, %v", o, err)
	}

	unlock, err := cm.Lock(ctx, "go-build", 0)
	if err != nil {
		t.Fatal(err)
	}
	if u, err := cm.TryLock("go-build", 0); err != nil || u != nil {
		t.Errorf("TryLock of a held instance = %v, %v; want nil, nil", u != nil, err)
	}
	u1, err := cm.TryLock("go-build", 1)
	if err != nil || u1 == nil {
		t.Fatalf("TryLock of a free instance: %v", err)
	}
	u1()
	unlock()
	if u, err := cm.TryLock("go-build", 0); err != nil || u == nil {
		t.Errorf("TryLock after unlock: %v", err)
	} else {
		u()
	}
}
