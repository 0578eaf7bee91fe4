package cache

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStatCacheRacyAndReuse(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	old := time.Now().Add(-time.Hour)
	write := func(content string) os.FileInfo {
		t.Helper()
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}
	calls := 0
	hash := func(content string) func() (string, error) {
		return func() (string, error) { calls++; return content, nil }
	}

	fi := write("aaaa")
	c := s.StatCache()
	if sum, _ := c.Sum(p, fi, hash("aaaa")); sum != "aaaa" || calls != 1 {
		t.Fatalf("first sum %q, %d calls", sum, calls)
	}
	// The file's ctime was just set (Chtimes), within the racy window of its
	// hashing: the entry must not be trusted yet.
	if sum, _ := c.Sum(p, fi, hash("aaaa")); sum != "aaaa" || calls != 2 {
		t.Fatalf("racy entry trusted: %d calls", calls)
	}
	// Same size, same mtime, different bytes: the ctime changes, so it is
	// re-hashed, whatever the window.
	fi2 := write("bbbb")
	if sum, _ := c.Sum(p, fi2, hash("bbbb")); sum != "bbbb" {
		t.Fatalf("changed content with identical size and mtime gave %q", sum)
	}
	// An entry hashed well after its last change is trusted, and persists.
	c.mu.Lock()
	e := c.entries[p]
	e.Hashed = time.Now().Add(time.Minute).UnixNano()
	c.entries[p] = e
	c.mu.Unlock()
	if err := c.Save(s); err != nil {
		t.Fatal(err)
	}
	c2 := s.StatCache()
	calls = 0
	if sum, _ := c2.Sum(p, fi2, hash("never")); sum != "bbbb" || calls != 0 {
		t.Fatalf("persisted entry: %q, %d calls", sum, calls)
	}
	// A corrupt cache file is an empty cache, not an error.
	if err := os.WriteFile(filepath.Join(s.Root(), "statcache.gob"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c3 := s.StatCache(); len(c3.entries) != 0 {
		t.Fatal("corrupt stat cache was loaded")
	}
}
