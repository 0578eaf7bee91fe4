//go:build linux

package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Temp is the store's tmp dir: room for writes in progress, on the same
// filesystem as what they become, so that a finished one is renamed into
// place. What a killed process leaves there, Clean removes.
type Temp struct {
	dir string
	gc  *GC // Clean removes unlocked leftovers only while no one holds the store

	locks sync.Map // dir made by Dir → *os.File holding its flock
}

// lockedSuffix marks the dirs that Dir keeps flocked while in use: those
// can be cleaned whenever their lock is free.
const lockedSuffix = ".lk"

// grace spares other tmp entries younger than this when the store is
// free: a process may be just starting.
const grace = 10 * time.Second

// Dir makes a fresh directory in tmp. It stays flocked by this process
// until Remove (or exit), so that Clean in another process removes it
// only once its owner is dead.
func (t *Temp) Dir(prefix string) (string, error) {
	d, err := os.MkdirTemp(t.dir, prefix)
	if err != nil {
		return "", fmt.Errorf("store temp dir: %w", err)
	}
	// Locked first, then named as locked: Clean never sees a locked-
	// protocol dir that is not locked yet by a live owner.
	f, err := lockDir(d)
	if err == nil {
		err = os.Rename(d, d+lockedSuffix)
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		os.RemoveAll(d)
		return "", fmt.Errorf("store temp dir: %w", err)
	}
	d += lockedSuffix
	t.locks.Store(d, f)
	return d, nil
}

// Remove removes a dir made by Dir (if still there) and drops its lock.
func (t *Temp) Remove(dir string) error {
	err := os.RemoveAll(dir)
	if f, ok := t.locks.LoadAndDelete(dir); ok {
		f.(*os.File).Close()
	}
	return err
}

func lockDir(dir string) (*os.File, error) {
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

// Clean removes what killed processes left in tmp (half-written blobs,
// step dirs, unpacks). A Dir is removed as soon as no live process holds
// its lock; other leftovers (temp files of blob and record writes) only
// when no other process holds the store (the exclusive GC lock is free)
// and they are a few seconds old.
func (t *Temp) Clean() (removed int, err error) {
	ents, err := os.ReadDir(t.dir)
	if err != nil {
		return 0, fmt.Errorf("cleaning %s: %w", t.dir, err)
	}
	var alone *Lock
	defer func() { alone.Unlock() }()
	triedAlone := false
	cutoff := time.Now().Add(-grace)
	for _, e := range ents {
		p := filepath.Join(t.dir, e.Name())
		if e.IsDir() && strings.HasSuffix(e.Name(), lockedSuffix) {
			f, err := lockDir(p)
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
			if alone, err = t.gc.TryLockExclusive(); err != nil {
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
