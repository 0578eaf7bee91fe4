//go:build linux

package cache

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A killed build's tmp dir is removed as soon as its lock is free, even
// while other builds hold the store; a live one's never is.
func TestCleanTmpRemovesOnlyUnlockedLeftovers(t *testing.T) {
	root := t.TempDir()
	live, err := Open(root) // the process that is still building
	if err != nil {
		t.Fatal(err)
	}
	inUse, err := live.TempDir("step-")
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
	stale, err := dead.TempDir("step-")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := dead.tmpLocks.Load(stale)
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

	hold, err := live.LockShared(t.Context()) // a build is running
	if err != nil {
		t.Fatal(err)
	}
	cleaner, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	exists := func(p string) bool { _, err := os.Lstat(p); return err == nil }
	if n, err := cleaner.CleanTmp(); err != nil || n != 1 {
		t.Errorf("CleanTmp while a build runs: %d removed, %v; want 1", n, err)
	}
	if exists(stale) || !exists(inUse) || !exists(half) || !exists(fresh) {
		t.Errorf("after clean with the store busy: stale %v (want gone), in use %v, half blob %v, fresh %v",
			exists(stale), exists(inUse), exists(half), exists(fresh))
	}
	hold.Unlock()
	if n, err := cleaner.CleanTmp(); err != nil || n != 1 {
		t.Errorf("CleanTmp with the store free: %d removed, %v; want 1", n, err)
	}
	if exists(half) || !exists(inUse) || !exists(fresh) {
		t.Errorf("with the store free: half blob %v (want gone), in use %v, fresh %v", exists(half), exists(inUse), exists(fresh))
	}
	if err := live.RemoveTemp(inUse); err != nil || exists(inUse) {
		t.Errorf("RemoveTemp: %v, still there %v", err, exists(inUse))
	}
}
