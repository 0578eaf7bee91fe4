//go:build linux

package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"golang.org/x/sys/unix"
)

// Config is config.json at the store's root: the user's settings, read
// when needed (never written by kiln).
//
//	{"build": {"pidsLimit": 4096, "memoryLimit": "4GB", "maxArchiveSize": "10GB"},
//	 "gc": {"enabled": true, "keepDuration": "48h", "maxUsedSpace": "20GB", "reservedSpace": "2GB"}}
type Config struct {
	path string
	root string // the filesystem whose free space ArchiveLimit measures
}

// read decodes config.json into v; a missing file leaves v as it is.
func (cf *Config) read(v any) error {
	b, err := os.ReadFile(cf.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("reading %s: %w", cf.path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("reading %s: %w", cf.path, err)
	}
	return nil
}

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

// Build reads $ROOT/config.json's "build" object:
//
//	{"build": {"pidsLimit": 4096, "memoryLimit": "4GB", "maxArchiveSize": "10GB"}}
func (cf *Config) Build() (BuildConfig, error) {
	var bc BuildConfig
	var file struct {
		Build struct {
			PidsLimit      int64  `json:"pidsLimit"`
			MemoryLimit    string `json:"memoryLimit"`
			MaxArchiveSize string `json:"maxArchiveSize"`
		} `json:"build"`
	}
	path := cf.path
	if err := cf.read(&file); err != nil {
		return bc, err
	}
	if file.Build.PidsLimit < 0 {
		return bc, fmt.Errorf("%s: build.pidsLimit %d: must be 0 (no limit) or more", path, file.Build.PidsLimit)
	}
	bc.PidsLimit = file.Build.PidsLimit
	for _, f := range []struct {
		key, v string
		dst    *int64
	}{
		{"build.memoryLimit", file.Build.MemoryLimit, &bc.MemoryLimit},
		{"build.maxArchiveSize", file.Build.MaxArchiveSize, &bc.MaxArchiveSize},
	} {
		if f.v == "" {
			continue
		}
		n, err := ParseSize(f.v)
		if err != nil {
			return bc, fmt.Errorf("%s: %s: %w", path, f.key, err)
		}
		*f.dst = n
	}
	return bc, nil
}

// RegistryConfig is $ROOT/config.json's "registry" object: hosts that may
// be spoken to over plain HTTP, and mirrors tried before a registry:
//
//	{"registry": {"insecure": ["reg.lan:5000"], "mirrors": {"docker.io": ["127.0.0.1:5001"]}}}
type RegistryConfig struct {
	Insecure []string            `json:"insecure"`
	Mirrors  map[string][]string `json:"mirrors"`
}

// Registry reads config.json's "registry" object.
func (cf *Config) Registry() (RegistryConfig, error) {
	var file struct {
		Registry RegistryConfig `json:"registry"`
	}
	err := cf.read(&file)
	return file.Registry, err
}

// ArchiveLimit is the most an extraction may declare now: the configured
// maximum, or else the store's free space minus the GC's reserved space
// (all of the free space when that is less than the reserve).
func (cf *Config) ArchiveLimit(bc BuildConfig) (int64, error) {
	if bc.MaxArchiveSize > 0 {
		return bc.MaxArchiveSize, nil
	}
	gc, err := cf.GC()
	if err != nil {
		return 0, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(cf.root, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", cf.root, err)
	}
	free := int64(st.Bavail) * st.Bsize
	if free > gc.ReservedSpace {
		return free - gc.ReservedSpace, nil
	}
	return max(free, 1), nil
}

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

// GC reads config.json's "gc" object, then the environment (KILN_GC=0
// disables; KILN_GC_KEEP_DURATION, KILN_GC_MAX_USED_SPACE,
// KILN_GC_RESERVED_SPACE override).
func (cf *Config) GC() (GCConfig, error) {
	c := DefaultGCConfig
	var file struct {
		GC struct {
			Enabled       *bool  `json:"enabled"`
			KeepDuration  string `json:"keepDuration"`
			MaxUsedSpace  string `json:"maxUsedSpace"`
			ReservedSpace string `json:"reservedSpace"`
		} `json:"gc"`
	}
	if err := cf.read(&file); err != nil {
		return c, err
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
