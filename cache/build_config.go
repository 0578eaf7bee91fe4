//go:build linux

package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// BuildConfig is $ROOT/config.json's "build" object: what one build step
// may use. Zero values mean no limit, as in BuildKit, except the archive
// size, whose default keeps an ADD from filling the disk.
type BuildConfig struct {
	PidsLimit   int64 // processes (and threads) of one RUN step at once
	MemoryLimit int64 // bytes of memory of one RUN step
	// MaxArchiveSize bounds the declared size of what one ADD (or one
	// pulled layer) extracts; 0 = the store's free space minus the GC's
	// reserved space, measured when the extraction starts.
	MaxArchiveSize int64
}

// LoadBuildConfig reads $ROOT/config.json's "build" object:
//
//	{"build": {"pidsLimit": 4096, "memoryLimit": "4GB", "maxArchiveSize": "10GB"}}
func (s *Store) LoadBuildConfig() (BuildConfig, error) {
	var c BuildConfig
	var file struct {
		Build struct {
			PidsLimit      int64  `json:"pidsLimit"`
			MemoryLimit    string `json:"memoryLimit"`
			MaxArchiveSize string `json:"maxArchiveSize"`
		} `json:"build"`
	}
	path := filepath.Join(s.root, "config.json")
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return c, nil
	case err != nil:
		return c, fmt.Errorf("reading %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &file); err != nil {
		return c, fmt.Errorf("reading %s: %w", path, err)
	}
	if file.Build.PidsLimit < 0 {
		return c, fmt.Errorf("%s: build.pidsLimit %d: must be 0 (no limit) or more", path, file.Build.PidsLimit)
	}
	c.PidsLimit = file.Build.PidsLimit
	for _, f := range []struct {
		key, v string
		dst    *int64
	}{
		{"build.memoryLimit", file.Build.MemoryLimit, &c.MemoryLimit},
		{"build.maxArchiveSize", file.Build.MaxArchiveSize, &c.MaxArchiveSize},
	} {
		if f.v == "" {
			continue
		}
		n, err := ParseSize(f.v)
		if err != nil {
			return c, fmt.Errorf("%s: %s: %w", path, f.key, err)
		}
		*f.dst = n
	}
	return c, nil
}

// ArchiveLimit is the most an extraction may declare now: the configured
// maximum, or else the store's free space minus the GC's reserved space
// (all of the free space when that is less than the reserve).
func (s *Store) ArchiveLimit(c BuildConfig) (int64, error) {
	if c.MaxArchiveSize > 0 {
		return c.MaxArchiveSize, nil
	}
	gc, err := s.LoadGCConfig()
	if err != nil {
		return 0, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(s.root, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", s.root, err)
	}
	free := int64(st.Bavail) * st.Bsize
	if free > gc.ReservedSpace {
		return free - gc.ReservedSpace, nil
	}
	return max(free, 1), nil
}
