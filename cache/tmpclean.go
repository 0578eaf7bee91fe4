package cache

import (
	"os"
	"path/filepath"
	"time"
)

// CleanTmp removes what killed processes left in the store's tmp dir
// (half-written blobs, step dirs, unpacks). It only runs when no other
// process holds the store (the exclusive GC lock is free), and leaves
// entries younger than a few seconds to a process that is just starting.
func (s *Store) CleanTmp() (removed int, err error) {
	l, err := s.TryLockExclusive()
	if err != nil || l == nil {
		return 0, err
	}
	defer l.Unlock()
	dir := filepath.Join(s.root, "tmp")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	cutoff := time.Now().Add(-10 * time.Second)
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || fi.ModTime().After(cutoff) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err == nil {
			removed++
		}
	}
	return removed, nil
}
