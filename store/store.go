//go:build linux

package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrNotFound is wrapped by every lookup that finds nothing.
var ErrNotFound = errors.New("not found")

// IsNotFound reports whether err means something was not in the store.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// Store is a local store rooted at one directory, made of roles, each a
// small type over its part of the layout (layout.go). It is safe for use
// by several goroutines and several processes at once.
type Store struct {
	root string

	blobs       *Blobs
	layers      *Layers
	records     *Records
	names       *Names
	images      *Images
	containers  *Containers
	builds      *Builds
	cacheMounts *CacheMounts
	temp        *Temp
	config      *Config
	gc          *GC
}

// DefaultRoot is $KILN_ROOT, else /var/lib/kiln for root and
// ~/.local/share/kiln for everyone else.
func DefaultRoot() string {
	if r := os.Getenv("KILN_ROOT"); r != "" {
		return r
	}
	if os.Geteuid() == 0 {
		return "/var/lib/kiln"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "kiln")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "kiln")
	}
	return filepath.Join(home, ".local", "share", "kiln")
}

// Open opens (creating if needed) the store at root.
func Open(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", root, err)
	}
	for _, e := range layout {
		if !e.dir {
			continue
		}
		if err := os.MkdirAll(e.in(abs), 0o700); err != nil {
			return nil, fmt.Errorf("creating store %s: %w", abs, err)
		}
	}
	return newStore(abs), nil
}

// newStore wires the roles together: each gets its paths and the roles it
// uses, nothing else.
func newStore(root string) *Store {
	tmp := tmpDir.in(root)
	s := &Store{root: root}
	s.temp = &Temp{dir: tmp}
	s.config = &Config{path: configFile.in(root), root: root}
	sizes := &snapshotSizes{path: gcSizesFile.in(root), tmp: tmp}
	s.blobs = &Blobs{dir: blobsDir.in(root), tmp: tmp}
	s.layers = &Layers{snapshots: snapshotsDir.in(root), records: layersDir.in(root), tmp: tmp,
		blobs: s.blobs, temp: s.temp, config: s.config, sizes: sizes, locks: locksDir.in(root)}
	s.names = &Names{dir: namesDir.in(root), tmp: tmp, blobs: s.blobs}
	s.images = &Images{blobs: s.blobs, layers: s.layers, names: s.names}
	locks := locksDir.in(root)
	s.records = &Records{dir: keysDir.in(root), tmp: tmp, locks: locks, layers: s.layers, images: s.images}
	s.containers = &Containers{dir: containersDir.in(root), tmp: tmp, images: s.images, layers: s.layers}
	s.builds = &Builds{logs: logsDir.in(root), records: buildsDir.in(root), tmp: tmp}
	s.cacheMounts = &CacheMounts{dir: cacheMountsDir.in(root), tmp: tmp, locks: locks}
	s.gc = &GC{s: s, lock: gcLockFile.in(root), sizes: sizes}
	s.temp.gc = s.gc
	return s
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

// Blobs are the content-addressed blobs: manifests, configs, layer blobs.
func (s *Store) Blobs() *Blobs { return s.blobs }

// Layers are the unpacked layer snapshots and their records.
func (s *Store) Layers() *Layers { return s.layers }

// Records are the cache: what each cache key made.
func (s *Store) Records() *Records { return s.records }

// Names are the image names (tags).
func (s *Store) Names() *Names { return s.names }

// Images are the stored images: manifests and configs over layers.
func (s *Store) Images() *Images { return s.images }

// Containers are the containers of `kiln run` and their writable layers.
func (s *Store) Containers() *Containers { return s.containers }

// Builds are what builds leave for the user and the next build: step logs
// and build records.
func (s *Store) Builds() *Builds { return s.builds }

// CacheMounts are the directories of RUN --mount=type=cache.
func (s *Store) CacheMounts() *CacheMounts { return s.cacheMounts }

// Temp is room for writes in progress, on the store's filesystem.
func (s *Store) Temp() *Temp { return s.temp }

// Config is the user's settings in config.json.
func (s *Store) Config() *Config { return s.config }

// GC is garbage collection and the store lock that keeps it from builds.
func (s *Store) GC() *GC { return s.gc }

// StatCache loads the store's stat cache (an unreadable one starts empty).
func (s *Store) StatCache() *StatCache {
	return loadStatCache(statCacheFile.in(s.root), oldStatCacheFile.in(s.root), s.temp.dir)
}
