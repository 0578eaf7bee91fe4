//go:build linux

package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kiln-build/kiln/digest"
)

// CacheMounts are the persistent directories of RUN --mount=type=cache
// (cache-mounts/<id hash>[-<instance>]), kept across builds and never
// collected, and their locks (locks/cache-<id hash>-<instance>).
// Instance 0 is the shared directory of an id; instances above 0 are the
// private copies of sharing=private.
type CacheMounts struct {
	dir   string
	tmp   string
	locks string
}

// Dir returns the directory of the cache mount id (instance > 0: a private
// extra copy), creating it with mode, uid and gid on first use.
func (cm *CacheMounts) Dir(id string, instance int, mode os.FileMode, uid, gid int) (string, error) {
	sum := sha256.Sum256([]byte(id))
	name := hex.EncodeToString(sum[:16])
	if instance > 0 {
		name = fmt.Sprintf("%s-%d", name, instance)
	}
	dir := filepath.Join(cm.dir, name)
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	tmp, err := os.MkdirTemp(cm.tmp, "cachemount-")
	if err != nil {
		return "", fmt.Errorf("cache mount %s: %w", id, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return "", fmt.Errorf("cache mount %s: %w", id, err)
	}
	if err := os.Lchown(tmp, uid, gid); err != nil {
		return "", fmt.Errorf("cache mount %s: %w", id, err)
	}
	if err := renameDir(tmp, dir); err != nil {
		return "", err
	}
	return dir, nil
}

func (cm *CacheMounts) lockPath(id string, instance int) string {
	return filepath.Join(cm.locks, fmt.Sprintf("cache-%s-%d", digest.FromBytes([]byte(id)).Hex()[:32], instance))
}

// Lock takes the exclusive lock of a cache mount instance, across
// processes, waiting until ctx is done.
func (cm *CacheMounts) Lock(ctx context.Context, id string, instance int) (unlock func(), err error) {
	return lockFile(ctx, cm.lockPath(id, instance), "cache mount "+id)
}

// TryLock is Lock without the wait: it returns a nil unlock if the
// instance is taken.
func (cm *CacheMounts) TryLock(id string, instance int) (unlock func(), err error) {
	return tryLockFile(cm.lockPath(id, instance), "cache mount "+id)
}
