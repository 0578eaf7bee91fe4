//go:build linux

package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// lockFile takes an exclusive flock on the file at path (creating it),
// waiting with backoff until ctx is done. The file is never removed: a
// lock file removed while someone waits on it would let two holders in.
func lockFile(ctx context.Context, path, what string) (unlock func(), err error) {
	return flockFile(ctx, path, what, true)
}

// tryLockFile is lockFile without the wait: nil, nil if the lock is held.
func tryLockFile(path, what string) (unlock func(), err error) {
	return flockFile(context.Background(), path, what, false)
}

func flockFile(ctx context.Context, path, what string, wait bool) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock for %s: %w", what, err)
	}
	backoff := time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", what, err)
		}
		if !wait {
			f.Close()
			return nil, nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		if backoff < 50*time.Millisecond {
			backoff *= 2
		}
	}
}
