//go:build linux

package cache

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/digest"
)

// LockKey takes an exclusive lock on cache key k, across goroutines and
// processes, so that a step shared by concurrent builds runs once: the
// second one waits, then finds the first one's record. Keys share 4096 lock
// files (by the first hex digits), so no lock file is ever created per key
// or removed while someone waits on it. Cancelling ctx abandons the wait.
func (s *Store) LockKey(ctx context.Context, k digest.Digest) (unlock func(), err error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	return s.lockFile(ctx, k.Hex()[:3], string(k))
}

// LockCacheMount takes the exclusive lock of a cache mount instance (its
// own lock files, apart from the key locks a step holds meanwhile).
func (s *Store) LockCacheMount(ctx context.Context, id string, instance int) (unlock func(), err error) {
	name := fmt.Sprintf("cache-%s-%d", digest.FromBytes([]byte(id)).Hex()[:32], instance)
	return s.lockFile(ctx, name, "cache mount "+id)
}

// TryLockCacheMount is LockCacheMount without waiting: nil, nil if busy.
func (s *Store) TryLockCacheMount(id string, instance int) (unlock func(), err error) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	u, err := s.LockCacheMount(ctx, id, instance)
	if err == context.Canceled {
		return nil, nil
	}
	return u, err
}

func (s *Store) lockFile(ctx context.Context, name, what string) (unlock func(), err error) {
	dir := filepath.Join(s.root, "locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock for %s: %w", what, err)
	}
	wait := time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		if wait < 50*time.Millisecond {
			wait *= 2
		}
	}
}
