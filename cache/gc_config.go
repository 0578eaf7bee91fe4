//go:build linux

package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"golang.org/x/sys/unix"
)

// GCConfig is the automatic GC policy run after builds. Defaults follow
// BuildKit's: unreferenced records unused for 48h go, and the store is
// capped at 10% of its filesystem or 20GB, whichever is smaller, but GC
// never shrinks it below 2GB (reserved space).
type GCConfig struct {
	Enabled       bool
	KeepDuration  time.Duration
	MaxUsedSpace  int64 // 0: min(10% of the filesystem, 20GB)
	ReservedSpace int64
}

// DefaultGCConfig is the policy when nothing is configured.
var DefaultGCConfig = GCConfig{Enabled: true, KeepDuration: 48 * time.Hour, ReservedSpace: 2 << 30}

// LoadGCConfig reads $ROOT/config.json's "gc" object, then the
// environment (KILN_GC=0 disables; KILN_GC_KEEP_DURATION,
// KILN_GC_MAX_USED_SPACE, KILN_GC_RESERVED_SPACE override).
func (s *Store) LoadGCConfig() (GCConfig, error) {
	c := DefaultGCConfig
	var file struct {
		GC struct {
			Enabled       *bool  `json:"enabled"`
			KeepDuration  string `json:"keepDuration"`
			MaxUsedSpace  string `json:"maxUsedSpace"`
			ReservedSpace string `json:"reservedSpace"`
		} `json:"gc"`
	}
	path := filepath.Join(s.root, "config.json")
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return c, fmt.Errorf("reading %s: %w", path, err)
	default:
		if err := json.Unmarshal(b, &file); err != nil {
			return c, fmt.Errorf("reading %s: %w", path, err)
		}
	}
	if file.GC.Enabled != nil {
		c.Enabled = *file.GC.Enabled
	}
	set := func(what, v string, dur *time.Duration, size *int64) error {
		if v == "" {
			return nil
		}
		var err error
		if dur != nil {
			*dur, err = ParseDuration(v)
		} else {
			*size, err = ParseSize(v)
		}
		if err != nil {
			return fmt.Errorf("gc %s: %w", what, err)
		}
		return nil
	}
	if v, ok := os.LookupEnv("KILN_GC"); ok {
		en, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("KILN_GC=%q: %w", v, err)
		}
		c.Enabled = en
	}
	for _, f := range []struct {
		what, file, env string
		dur             *time.Duration
		size            *int64
	}{
		{"keepDuration", file.GC.KeepDuration, "KILN_GC_KEEP_DURATION", &c.KeepDuration, nil},
		{"maxUsedSpace", file.GC.MaxUsedSpace, "KILN_GC_MAX_USED_SPACE", nil, &c.MaxUsedSpace},
		{"reservedSpace", file.GC.ReservedSpace, "KILN_GC_RESERVED_SPACE", nil, &c.ReservedSpace},
	} {
		if err := set(f.what, f.file, f.dur, f.size); err != nil {
			return c, err
		}
		if err := set(f.env, os.Getenv(f.env), f.dur, f.size); err != nil {
			return c, err
		}
	}
	return c, nil
}

// Policies turns the config into GC passes for a store on a filesystem of
// fsSize bytes.
func (c GCConfig) Policies(fsSize int64) []GCPolicy {
	limit := c.MaxUsedSpace
	if limit <= 0 {
		limit = min(fsSize/10, 20<<30)
	}
	limit = max(limit, c.ReservedSpace)
	return []GCPolicy{{Until: c.KeepDuration, All: true}, {All: true, KeepBytes: limit}}
}

// AutoGC runs the configured policy if there is anything for it to do.
// It first checks cheaply (record ages, blob and cached snapshot sizes),
// so that a build with nothing to collect pays a directory listing.
// The caller holds the exclusive lock.
func (s *Store) AutoGC(ctx context.Context) (GCResult, bool, error) {
	c, err := s.LoadGCConfig()
	if err != nil || !c.Enabled {
		return GCResult{}, false, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(s.root, &st); err != nil {
		return GCResult{}, false, fmt.Errorf("statfs %s: %w", s.root, err)
	}
	pols := c.Policies(int64(st.Blocks) * st.Bsize)
	if !s.gcDue(pols[0].Until, pols[1].KeepBytes) {
		return GCResult{}, false, nil
	}
	res, err := s.GC(ctx, pols, false)
	return res, true, err
}

// gcDue reports whether a record or log is older than keep or the store's
// estimated size exceeds limit.
func (s *Store) gcDue(keep time.Duration, limit int64) bool {
	cutoff := time.Now().Add(-keep)
	for _, d := range []string{"keys", "logs"} {
		ents, _ := os.ReadDir(filepath.Join(s.root, d))
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && fi.ModTime().Before(cutoff) {
				return true
			}
		}
	}
	var used int64
	ents, _ := os.ReadDir(filepath.Join(s.root, "blobs", "sha256"))
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			used += fi.Size()
		}
	}
	// New snapshots are measured once here and remembered.
	inv := &inventory{snapshots: map[string]int64{}}
	if s.snapshotSizes(inv, nil) != nil {
		return true
	}
	for _, n := range inv.snapshots {
		used += n
	}
	return used > limit
}

// StoreLock is a hold on $ROOT/gc.lock: builds hold it shared for their
// whole run, GC exclusive, so GC never removes what a build is writing.
type StoreLock struct{ f *os.File }

// lock takes the store lock how (LOCK_SH or LOCK_EX); if it is held and
// wait is false it returns nil, nil, else it waits until ctx is done.
func (s *Store) lock(ctx context.Context, how int, wait bool) (*StoreLock, error) {
	f, err := os.OpenFile(filepath.Join(s.root, "gc.lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store lock: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return &StoreLock{f}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("store lock: %w", err)
		}
		if !wait {
			f.Close()
			return nil, nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// LockShared waits for a shared hold (while no GC runs).
func (s *Store) LockShared(ctx context.Context) (*StoreLock, error) {
	return s.lock(ctx, unix.LOCK_SH, true)
}

// LockExclusive waits until no build holds the store.
func (s *Store) LockExclusive(ctx context.Context) (*StoreLock, error) {
	return s.lock(ctx, unix.LOCK_EX, true)
}

// TryLockExclusive takes the exclusive hold if nobody else holds the
// store; it returns nil, nil if someone does.
func (s *Store) TryLockExclusive() (*StoreLock, error) {
	return s.lock(context.Background(), unix.LOCK_EX, false)
}

// Unlock releases the hold.
func (l *StoreLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the only descriptor drops the flock
	l.f = nil
	return err
}

// ParseSize parses "20GB", "512MB", "1.5g", "100" (bytes). Like docker's
// --keep-storage, units are binary: 1GB = 1024³ bytes (go-units'
// RAMInBytes, which docker uses); the error says what to write instead.
func ParseSize(v string) (int64, error) {
	n, err := units.RAMInBytes(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("invalid size %q (use e.g. 512MB, 20GB)", v)
	}
	return n, nil
}

// ParseDuration is time.ParseDuration that also takes days ("7d").
func ParseDuration(v string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.ParseFloat(d, 64)
		if err == nil && n >= 0 {
			return time.Duration(n * float64(24*time.Hour)), nil
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q (use e.g. 48h, 30m, 7d)", v)
	}
	return d, nil
}
