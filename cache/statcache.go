package cache

import (
	"encoding/gob"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// racyWindow is how close to its hashing a file's last change may be
// before the recorded sum is distrusted: file timestamps come from a
// coarse clock, so a write in the same tick as the hash could leave every
// stat field unchanged. Git calls this the racy-git problem.
const racyWindow = 2 * time.Second

// StatCache remembers the sha256 of files by their stat data (device,
// inode, size, mtime, ctime), so an unchanged build context is a stat walk
// rather than a read of every byte. It persists in the store.
type StatCache struct {
	path string

	mu      sync.Mutex
	entries map[string]statEntry
	dirty   bool
}

type statEntry struct {
	Dev, Ino     uint64
	Size         int64
	Mtime, Ctime int64 // ns
	Hashed       int64 // ns, when Sum was computed
	Sum          string
}

// StatCache loads the store's stat cache (an unreadable one starts empty).
func (s *Store) StatCache() *StatCache {
	c := &StatCache{path: filepath.Join(s.root, "statcache.gob"), entries: map[string]statEntry{}}
	f, err := os.Open(c.path)
	if err != nil {
		return c
	}
	defer f.Close()
	if err := gob.NewDecoder(f).Decode(&c.entries); err != nil {
		c.entries = map[string]statEntry{}
	}
	return c
}

// Sum returns the sha256 (hex) of the regular file at path, whose Lstat
// result is fi, calling hash only when the cache cannot vouch for it.
func (c *StatCache) Sum(path string, fi os.FileInfo, hash func() (string, error)) (string, error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return hash()
	}
	e := statEntry{
		Dev: uint64(st.Dev), Ino: st.Ino, Size: fi.Size(),
		Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(),
	}
	c.mu.Lock()
	old, found := c.entries[path]
	c.mu.Unlock()
	if found && old.Dev == e.Dev && old.Ino == e.Ino && old.Size == e.Size &&
		old.Mtime == e.Mtime && old.Ctime == e.Ctime &&
		max(e.Mtime, e.Ctime)+int64(racyWindow) < old.Hashed {
		return old.Sum, nil
	}
	e.Hashed = time.Now().UnixNano()
	sum, err := hash()
	if err != nil {
		return "", err
	}
	e.Sum = sum
	c.mu.Lock()
	c.entries[path] = e
	c.dirty = true
	c.mu.Unlock()
	return sum, nil
}

// Save writes the cache back if it changed (atomically: concurrent builds
// may each save; the last one wins, and any version is correct).
func (c *StatCache) Save(s *Store) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty {
		return nil
	}
	f, err := os.CreateTemp(filepath.Join(s.root, "tmp"), "statcache-")
	if err != nil {
		return fmt.Errorf("saving stat cache: %w", err)
	}
	defer os.Remove(f.Name())
	err = gob.NewEncoder(f).Encode(c.entries)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), c.path)
	}
	if err != nil {
		return fmt.Errorf("saving stat cache: %w", err)
	}
	c.dirty = false
	return nil
}
