//go:build linux

package solver

import (
	"context"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/store"
)

// The roles of the store the solver uses, each satisfied by the store's
// role of that name (New); tests fill Roles with fakes that need no root.

// Records are the build cache: the layer chain each cache key made
// (store.Records).
type Records interface {
	Lookup(ctx context.Context, key digest.Digest) ([]store.Layer, error) // wraps store.ErrNotFound
	Put(ctx context.Context, key digest.Digest, layers []store.Layer) error
	Touch(ctx context.Context, key digest.Digest) // used now: GC collects the records unused the longest
	// Lock holds key against every build on the store until unlock, so
	// that concurrent builds execute a step once.
	Lock(ctx context.Context, key digest.Digest) (unlock func(), err error)
}

// Layers are the store's snapshots: each layer's directory, in overlay
// format, and the making of a new one (store.Layers).
type Layers interface {
	SnapshotDir(diffID digest.Digest) string
	// EnsureDirs fetches the lazy ones of layers and returns their
	// snapshots, bottom first: overlay lower dirs.
	EnsureDirs(ctx context.Context, layers []store.Layer) ([]string, error)
	// Present says whether the layer's snapshot is here (not lazy).
	Present(ctx context.Context, diffID digest.Digest) bool
	// MoveIn turns dir (made by Scratch.Dir) into a layer; dir is gone
	// afterwards.
	MoveIn(ctx context.Context, dir string) (store.Layer, error)
}

// Images are the base images in the store (store.Images).
type Images interface {
	Layers(ctx context.Context, manifest digest.Digest) ([]store.Layer, *v1.ConfigFile, error)
	Pull(ctx context.Context, ref, platform string, policy store.PullPolicy) (store.Pulled, error)
}

// CacheMounts are the directories of RUN --mount=type=cache, kept across
// builds (store.CacheMounts).
type CacheMounts interface {
	Dir(id string, instance int, mode os.FileMode, uid, gid int) (string, error)
	Lock(ctx context.Context, id string, instance int) (unlock func(), err error)
	// TryLock returns a nil unlock if the instance is taken.
	TryLock(id string, instance int) (unlock func(), err error)
}

// Scratch is temporary room on the store's filesystem (store.Temp).
type Scratch interface {
	Dir(prefix string) (string, error)
	Remove(dir string) error
}

// Limits bound what a step may extract (store.Config).
type Limits interface {
	// ArchiveLimit is how much one ADD may extract, measured now.
	ArchiveLimit(store.BuildConfig) (int64, error)
}

// History keeps each build's record of its steps, by build name, for the
// next build's --explain-cache and COPY reuse (store.Builds).
type History interface {
	ReadRecord(ctx context.Context, name string, v any) error
	RecordSum(ctx context.Context, name string) string
	WriteRecord(ctx context.Context, name, sum string, v any) error
}

// StatCaches load the cache of file sums by stat data (store.Store); the
// solver saves it with its Save.
type StatCaches interface {
	StatCache() *store.StatCache // nil: none, every file is read
}

// Roles are the roles of the store a Solver uses.
type Roles struct {
	Records     Records
	Layers      Layers
	Images      Images
	CacheMounts CacheMounts
	Scratch     Scratch
	Limits      Limits
	History     History
	StatCaches  StatCaches
}

// rolesOf is the roles of st; that it compiles is the proof that each
// role of the store satisfies the solver's interface of that name.
func rolesOf(st *store.Store) Roles {
	return Roles{
		Records: st.Records(), Layers: st.Layers(), Images: st.Images(), CacheMounts: st.CacheMounts(),
		Scratch: st.Temp(), Limits: st.Config(), History: st.Builds(), StatCaches: st,
	}
}

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
