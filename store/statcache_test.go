//go:build linux

package store

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
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
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	c2 := s.StatCache()
	calls = 0
	if sum, _ := c2.Sum(p, fi2, hash("never")); sum != "bbbb" || calls != 0 {
		t.Fatalf("persisted entry: %q, %d calls", sum, calls)
	}
	// A corrupt cache file is an empty cache, not an error.
	if err := os.WriteFile(statCacheFile.in(s.Root()), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c3 := s.StatCache(); len(c3.entries) != 0 {
		t.Fatal("corrupt stat cache was loaded")
	}
}

// The file keeps every field of every entry; any cut of it is rejected
// whole (a torn file is an empty cache: every file is hashed again).
func TestStatCacheFileFormat(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := s.StatCache()
	for i := range 300 {
		p := filepath.Join("/ctx", "d", strings.Repeat("x", i%7), fmt.Sprint(i))
		c.entries[p] = statEntry{Dev: uint64(i), Ino: uint64(i) << 40, Size: int64(i) - 5, Mtime: -int64(i), Ctime: int64(i) * 1e9,
			Hashed: time.Now().UnixNano(), Sum: fmt.Sprintf("%064x x:%d", i, i)}
	}
	c.dirty = true
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	got := s.StatCache()
	if !maps.Equal(got.entries, c.entries) {
		t.Fatalf("round trip lost entries: %d of %d", len(got.entries), len(c.entries))
	}
	b, err := os.ReadFile(statCacheFile.in(s.Root()))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{len(b) - 1, len(b) / 2, len(statCacheMagic) + 1, 3} {
		if _, err := decodeStatCache(b[:n]); err == nil {
			t.Errorf("a stat cache cut to %d of %d bytes was accepted", n, len(b))
		}
	}
	if _, err := decodeStatCache(append(b, 0)); err == nil {
		t.Error("trailing garbage was accepted")
	}
}
