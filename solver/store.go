//go:build linux

package solver

import (
	"context"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/executor"
)

// The roles the solver needs a store to play. *cache.Store plays them all
// (New); tests give NewWith a fake that needs no root.

// Records is the index of results by cache key.
type Records interface {
	Lookup(ctx context.Context, key digest.Digest) ([]cache.Layer, error) // wraps cache.ErrNotFound
	Record(ctx context.Context, key digest.Digest, layers []cache.Layer) error
	TouchRecord(key digest.Digest) // used now: GC collects the records unused the longest
	// LockKey holds key against every build on the store until unlock,
	// so that concurrent builds execute a step once.
	LockKey(ctx context.Context, key digest.Digest) (unlock func(), err error)
}

// Layers are the store's snapshots: each layer's directory, in overlay
// format, and the commit of a new one.
type Layers interface {
	SnapshotDir(diffID digest.Digest) string
	SnapshotDirs(layers []cache.Layer) []string
	// CommitDir turns dir (made by Scratch.TempDir) into a layer; dir is
	// consumed.
	CommitDir(ctx context.Context, dir string) (cache.Layer, error)
}

// Images are the base images in the store.
type Images interface {
	ImageLayers(ctx context.Context, manifest digest.Digest) ([]cache.Layer, *v1.ConfigFile, error)
	Pull(ctx context.Context, ref, platform string, policy cache.PullPolicy) (cache.Pulled, error)
}

// CacheMounts are the directories of RUN --mount=type=cache, kept across
// builds.
type CacheMounts interface {
	CacheMountDir(id string, instance int, mode os.FileMode, uid, gid int) (string, error)
	LockCacheMount(ctx context.Context, id string, instance int) (unlock func(), err error)
	// TryLockCacheMount returns a nil unlock if the instance is taken.
	TryLockCacheMount(id string, instance int) (unlock func(), err error)
}

// Scratch is temporary room on the store's filesystem.
type Scratch interface {
	TempDir(prefix string) (string, error)
	RemoveTemp(dir string) error
	// ArchiveLimit is how much one ADD may extract, measured now.
	ArchiveLimit(cache.BuildConfig) (int64, error)
}

// History keeps each build's record of its steps, by build name, for the
// next build's --explain-cache and COPY reuse.
type History interface {
	ReadBuildRecord(id string, v any) error
	BuildRecordSum(id string) string
	WriteBuildRecord(id, sum string, v any) error
}

// StatCaches load and save the cache of file sums by stat data.
type StatCaches interface {
	StatCache() *cache.StatCache // nil: none, every file is read
	SaveStatCache(*cache.StatCache) error
}

// Store is every role at once.
type Store interface {
	Records
	Layers
	Images
	CacheMounts
	Scratch
	History
	StatCaches
}

// cacheStore is the real store in its roles.
type cacheStore struct{ *cache.Store }

var _ Store = cacheStore{}

// SaveStatCache implements StatCaches.
func (s cacheStore) SaveStatCache(c *cache.StatCache) error { return c.Save(s.Store) }

// Executor runs what a step executes, over an overlay rootfs.
type Executor interface {
	// Run runs a RUN step's process in a container over root; a non-zero
	// exit is an *executor.ExitError.
	Run(ctx context.Context, root executor.Rootfs, p executor.Process, o executor.Options) error
	// Apply does a COPY, ADD or WORKDIR over root.
	Apply(ctx context.Context, root executor.Rootfs, op executor.FileOp) error
}

// linuxExecutor is package executor: namespaces, overlayfs, seccomp.
type linuxExecutor struct{}

var _ Executor = linuxExecutor{}

// Run implements Executor.
func (linuxExecutor) Run(ctx context.Context, root executor.Rootfs, p executor.Process, o executor.Options) error {
	return executor.Run(ctx, root, p, o)
}

// Apply implements Executor.
func (linuxExecutor) Apply(ctx context.Context, root executor.Rootfs, op executor.FileOp) error {
	return executor.Apply(ctx, root, op)
}
