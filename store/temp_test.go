//go:build linux

package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTemp is the conformance suite of Temp: a Dir is in tmp, flocked
// while its owner lives, and gone with its lock after Remove.
func TestTemp(t *testing.T) {
	s := openTemp(t)
	d, err := s.Temp().Dir("step-")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(d) != filepath.Join(s.Root(), "tmp") || !strings.HasPrefix(filepath.Base(d), "step-") {
		t.Errorf("Dir = %s, want a step-* dir in the store's tmp", d)
	}
	if _, err := lockDir(d); err == nil {
		t.Error("a live Dir is not locked")
	}
	if err := s.Temp().Remove(d); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d); !os.IsNotExist(err) {
		t.Errorf("after Remove: %v", err)
	}
	if _, ok := s.temp.locks.Load(d); ok {
		t.Error("Remove kept the dir's lock")
	}
}

// A killed build's tmp dir is removed as soon as its lock is free, even
// while other builds hold the store; a live one's never is.
func TestTempCleanRemovesOnlyUnlockedLeftovers(t *testing.T) {
	root := t.TempDir()
	live, err := Open(root) // the process that is still building
	if err != nil {
		t.Fatal(err)
	}
	inUse, err := live.Temp().Dir("step-")
	if err != nil {
		t.Fatal(err)
	}
	// What a SIGKILLed process leaves: a TempDir nobody locks any more
	// (made like TempDir, its lock dropped as by the process's death), and
	// a half-written blob.
	dead, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	stale, err := dead.Temp().Dir("step-")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := dead.temp.locks.Load(stale)
	f.(*os.File).Close()
	if err := os.MkdirAll(filepath.Join(stale, "upper", "work"), 0o755); err != nil {
		t.Fatal(err)
	}
	half := filepath.Join(root, "tmp", "blob-123")
	if err := os.WriteFile(half, []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(root, "tmp", "blob-456") // younger than the grace time
	if err := os.WriteFile(fresh, []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	for _, p := range []string{inUse, half} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}

	hold, err := live.GC().LockShared(t.Context()) // a build is running
	if err != nil {
		t.Fatal(err)
	}
	cleaner, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	exists := func(p string) bool { _, err := os.Lstat(p); return err == nil }
	if n, err := cleaner.Temp().Clean(); err != nil || n != 1 {
		t.Errorf("CleanTmp while a build runs: %d removed, %v; want 1", n, err)
	}
	if exists(stale) || !exists(inUse) || !exists(half) || !exists(fresh) {
		t.Errorf("after clean with the store busy: stale %v (want gone), in use %v, half blob %v, fresh %v",
			exists(stale), exists(inUse), exists(half), exists(fresh))
	}
	hold.Unlock()
	if n, err := cleaner.Temp().Clean(); err != nil || n != 1 {
		t.Errorf("CleanTmp with the store free: %d removed, %v; want 1", n, err)
	}
	if exists(half) || !exists(inUse) || !exists(fresh) {
		t.Errorf("with the store free: half blob %v (want gone), in use %v, fresh %v", exists(half), exists(inUse), exists(fresh))
	}
	if err := live.Temp().Remove(inUse); err != nil || exists(inUse) {
		t.Errorf("RemoveTemp: %v, still there %v", err, exists(inUse))
	}
}
