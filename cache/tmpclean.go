//go:build linux

package cache

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// lockedTmpSuffix marks the tmp dirs that TempDir keeps flocked while in
// use: those can be cleaned whenever their lock is free.
const lockedTmpSuffix = ".lk"

// tmpGrace spares other tmp entries younger than this when the store is
// free: a process may be just starting.
const tmpGrace = 10 * time.Second

func lockTmp(dir string) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// CleanTmp removes what killed processes left in the store's tmp dir
// (half-written blobs, step dirs, unpacks). A TempDir is removed as soon
// as no live process holds its lock; other leftovers (temp files of blob
// and record writes) only when no other process holds the store (the
// exclusive GC lock is free) and they are a few seconds old.
func (s *Store) CleanTmp() (removed int, err error) {
	dir := filepath.Join(s.root, "tmp")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var alone *StoreLock
	defer func() { alone.Unlock() }()
	triedAlone := false
	cutoff := time.Now().Add(-tmpGrace)
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() && strings.HasSuffix(e.Name(), lockedTmpSuffix) {
			f, err := lockTmp(p)
			if errors.Is(err, unix.EWOULDBLOCK) {
				continue // its owner is alive
			}
			if err == nil {
				err = os.RemoveAll(p)
				f.Close()
			}
			if err == nil {
				removed++
			}
			continue
		}
		if fi, err := e.Info(); err != nil || fi.ModTime().After(cutoff) {
			continue
		}
		if !triedAlone {
			triedAlone = true
			if alone, err = s.TryLockExclusive(); err != nil {
				return removed, err
			}
		}
		if alone == nil {
			continue
		}
		if err := os.RemoveAll(p); err == nil {
			removed++
		}
	}
	return removed, nil
}
