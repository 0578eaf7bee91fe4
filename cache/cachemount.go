//go:build linux

package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// CacheMountDir returns the persistent directory of RUN
// --mount=type=cache with this id (instance > 0: a private extra copy),
// creating it with mode, uid and gid on first use.
func (s *Store) CacheMountDir(id string, instance int, mode os.FileMode, uid, gid int) (string, error) {
	sum := sha256.Sum256([]byte(id))
	name := hex.EncodeToString(sum[:16])
	if instance > 0 {
		name = fmt.Sprintf("%s-%d", name, instance)
	}
	dir := filepath.Join(s.root, "cache-mounts", name)
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return "", fmt.Errorf("cache mount %s: %w", id, err)
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "cachemount-")
	if err != nil {
		return "", fmt.Errorf("cache mount %s: %w", id, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return "", err
	}
	if err := os.Lchown(tmp, uid, gid); err != nil {
		return "", err
	}
	if err := renameDir(tmp, dir); err != nil {
		return "", err
	}
	return dir, nil
}
