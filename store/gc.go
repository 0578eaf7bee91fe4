//go:build linux

package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// GC is garbage collection: it removes the cache records and build logs
// that policies select, then every layer, snapshot and blob that nothing
// kept names (see layout.go for what each entry is to GC). Image names and
// containers, and all they use, are never removed. The store lock
// (gc.lock) keeps it apart from builds: each build holds it shared for its
// whole run, GC holds it exclusive.
type GC struct {
	s     *Store // GC reads every role
	lock  string
	sizes *snapshotSizes
}

// GCPolicy is one pass of garbage collection over the cache records and
// build logs.
type GCPolicy struct {
	Until     time.Duration // only records unused for longer than this (0: every age)
	All       bool          // also records whose result a named image or container holds
	KeepBytes int64         // > 0: remove the oldest candidates only while the store uses more
}

// GCResult says what a collection removed.
type GCResult struct {
	Records, Logs, Layers, Blobs, Snapshots int
	Freed                                   int64 // bytes
	Before, After                           int64 // store usage (blobs, snapshots, logs)
}

// Run removes what policies select, or with dryRun only says what it
// would. The caller holds the exclusive lock (LockExclusive), so no build
// is writing meanwhile.
func (g *GC) Run(ctx context.Context, policies []GCPolicy, dryRun bool) (GCResult, error) {
	inv, err := g.s.inventory(ctx, nil)
	if err != nil {
		return GCResult{}, err
	}
	p := inv.plan(policies, time.Now())
	res := GCResult{
		Records: len(p.remove[keysDir]), Logs: len(p.remove[logsDir]), Layers: len(p.remove[layersDir]),
		Blobs: len(p.remove[blobsDir]), Snapshots: len(p.remove[snapshotsDir]),
		Freed: p.freed, Before: p.before, After: p.after,
	}
	if dryRun {
		return res, nil
	}
	// Bottom up: what names something goes before what it names, so that
	// a killed GC leaves only unnamed leftovers, which the next one removes.
	var errs []error
	for i := len(layout) - 1; i >= 0; i-- {
		for _, it := range p.remove[layout[i]] {
			if err := g.remove(it); err != nil {
				errs = append(errs, err)
			}
		}
	}
	var gone []string
	for _, it := range p.remove[snapshotsDir] {
		gone = append(gone, it.id)
	}
	g.sizes.forget(gone)
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("garbage collection: %w", err)
	}
	return res, nil
}

// remove removes one item; a dir is first renamed into tmp so that it is
// never seen half-removed under its name.
func (g *GC) remove(it *gcItem) error {
	if it.dir {
		return removeDir(g.s.temp.dir, "gc-"+randomID(), it.path)
	}
	if err := os.Remove(it.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Auto runs the configured policy (Config.GC) if there is anything for it
// to do. It first checks cheaply (record ages, blob and cached snapshot
// sizes), so that a build with nothing to collect pays a directory
// listing. The caller holds the exclusive lock.
func (g *GC) Auto(ctx context.Context) (GCResult, bool, error) {
	c, err := g.s.config.GC()
	if err != nil || !c.Enabled {
		return GCResult{}, false, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(g.s.root, &st); err != nil {
		return GCResult{}, false, fmt.Errorf("statfs %s: %w", g.s.root, err)
	}
	pols := c.Policies(int64(st.Blocks) * st.Bsize)
	if !g.due(pols[0].Until, pols[1].KeepBytes) {
		return GCResult{}, false, nil
	}
	res, err := g.Run(ctx, pols, false)
	return res, true, err
}

// due reports whether something GC collects by age is older than keep,
// or the store's estimated size (blobs, and snapshots as the size cache
// knows them) exceeds limit.
func (g *GC) due(keep time.Duration, limit int64) bool {
	cutoff := time.Now().Add(-keep)
	for _, e := range layout {
		if e.gc != gcAged {
			continue
		}
		ents, _ := os.ReadDir(e.in(g.s.root))
		for _, de := range ents {
			if fi, err := de.Info(); err == nil && fi.ModTime().Before(cutoff) {
				return true
			}
		}
	}
	var used int64
	ents, _ := os.ReadDir(g.s.blobs.dir)
	for _, de := range ents {
		if fi, err := de.Info(); err == nil {
			used += fi.Size()
		}
	}
	// New snapshots are measured once here and remembered.
	sizes, err := g.sizes.measure(g.s.layers.snapshots, nil)
	if err != nil {
		return true
	}
	for _, n := range sizes {
		used += n
	}
	return used > limit
}

// Lock is a hold on the store lock.
type Lock struct{ f *os.File }

// lockStore takes the store lock how (LOCK_SH or LOCK_EX); if it is held
// and wait is false it returns nil, nil, else it waits until ctx is done.
func (g *GC) lockStore(ctx context.Context, how int, wait bool) (*Lock, error) {
	f, err := os.OpenFile(g.lock, os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store lock: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return &Lock{f}, nil
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

// LockShared waits for a shared hold (while no GC runs): what a build
// takes for its whole run.
func (g *GC) LockShared(ctx context.Context) (*Lock, error) {
	return g.lockStore(ctx, unix.LOCK_SH, true)
}

// LockExclusive waits until no build holds the store.
func (g *GC) LockExclusive(ctx context.Context) (*Lock, error) {
	return g.lockStore(ctx, unix.LOCK_EX, true)
}

// TryLockExclusive takes the exclusive hold if nobody else holds the
// store; it returns nil, nil if someone does.
func (g *GC) TryLockExclusive() (*Lock, error) {
	return g.lockStore(context.Background(), unix.LOCK_EX, false)
}

// Unlock releases the hold.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the only descriptor drops the flock
	l.f = nil
	return err
}
