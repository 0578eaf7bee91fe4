//go:build linux

package fscopy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/kiln-build/kiln/executor/user"
	"github.com/kiln-build/kiln/layer"
)

// Options describe one COPY. They are JSON-serialisable because they travel
// to a child process.
type Options struct {
	// Sources are relative to srcRoot (a leading "/" and any "../" are
	// ignored); filepath.Match wildcards with \ escapes.
	Sources []string `json:"sources"`
	// Dest is an absolute path in destRoot; a trailing "/" means a directory.
	Dest string `json:"dest"`
	// Chown is "user[:group]" resolved in destRoot with user.LookupChown;
	// "" keeps the source owner (see ContextOwner).
	Chown string `json:"chown,omitempty"`
	// Chmod is octal ("0755") or symbolic ("u+x,go=rX"); "" keeps the mode.
	Chmod string `json:"chmod,omitempty"`
	// Excludes are patterns in .dockerignore syntax relative to srcRoot:
	// matching files are neither copied nor selected.
	Excludes []string `json:"excludes,omitempty"`
	// SourceExcludes (COPY --exclude) are the same kind of patterns, but
	// matched against paths relative to each selected source, as BuildKit
	// does: --exclude=*.md skips dir/x.md for a source "dir".
	SourceExcludes []string `json:"sourceExcludes,omitempty"`
	// Parents (COPY --parents) keeps each source's path below Dest: up to
	// a "/./" in the source, if it has one, else from srcRoot. "**"
	// matches any number of directories.
	Parents bool `json:"parents,omitempty"`
	// ContextOwner says the source is the build context: files are owned
	// 0:0 unless Chown says otherwise.
	ContextOwner bool `json:"contextOwner,omitempty"`
	// Unpack (ADD) extracts a source that is a tar archive (plain, gzip,
	// bzip2, xz or zstd, told by content, not name) into Dest.
	Unpack bool `json:"unpack,omitempty"`
	// Limits bound what Unpack extracts from one archive: declared size,
	// name lengths, depth. They change whether, never what, it writes,
	// and are not part of any cache key.
	Limits layer.Limits `json:"limits"`
	// Reuse, if set, takes unchanged files from an earlier run's snapshot
	// as hard links. It changes how, never what, the copy writes.
	Reuse *Reuse `json:"reuse,omitempty"`
}

// NotFoundError is returned when a literal (non-wildcard) source does not
// exist or is excluded.
type NotFoundError struct {
	Source     string
	ExcludedBy string // the exclude pattern that hides an existing source, if that is why
}

func (e *NotFoundError) Error() string {
	if e.ExcludedBy != "" {
		return fmt.Sprintf("%q: not found: it is excluded by the pattern %q (.dockerignore or --exclude); "+
			"remove that pattern or re-include the path with a \"!\" line", e.Source, e.ExcludedBy)
	}
	return fmt.Sprintf("%q: not found", e.Source)
}

// ErrDestNotDir is returned when several sources or a wildcard are copied
// to a destination that is not a directory. The text is docker's, word for
// word.
//
//lint:ignore ST1005 docker's exact message, capital and all
var ErrDestNotDir = errors.New("When using COPY with more than one source file, the destination must be a directory and end with a /")

// ErrAddDestNotDir is ErrDestNotDir for ADD: several sources of which one
// is a plain file (not a directory, not a local archive) copied to a
// destination that is not a directory.
//
//lint:ignore ST1005 docker's exact message, capital and all
var ErrAddDestNotDir = errors.New("When using ADD with more than one source file, the destination must be a directory and end with a /")

// Walk calls fn for every file, dir and symlink the copy with these options
// would read from srcRoot, in a deterministic lexical order (sources in the
// order given), with its path relative to srcRoot and its Lstat info. A
// source symlink that is followed is reported both as the link and as what
// it points to. The solver hashes exactly these for the cache key.
func Walk(ctx context.Context, srcRoot string, o Options, fn func(rel string, fi os.FileInfo) error) error {
	s, err := newSelector(srcRoot, o)
	if err != nil {
		return err
	}
	matches, _, err := s.expand(ctx, o.Sources)
	if err != nil {
		return err
	}
	v := walkVisitor{fn: fn}
	for _, m := range matches {
		if m.link != nil {
			if err := fn(m.linkRel, m.link); err != nil {
				return err
			}
		}
		if err := s.walk(ctx, m.scope, m.node, !m.excluded, m.excluded && s.reincludes(), v); err != nil {
			return err
		}
	}
	return nil
}

type walkVisitor struct {
	fn func(string, os.FileInfo) error
}

func (v walkVisitor) enter(n *node) error { return v.fn(n.rel, n.fi) }
func (v walkVisitor) leave(*node) error   { return nil }
func (v walkVisitor) leaf(n *node) error  { return v.fn(n.rel, n.fi) }

// Copy copies the selected sources onto destRoot with Docker COPY semantics.
func Copy(ctx context.Context, srcRoot, destRoot string, o Options) error {
	destRoot, err := cleanRoot(destRoot)
	if err != nil {
		return err
	}
	c := &copier{destRoot: destRoot, links: map[devIno]string{}, contextOwner: o.ContextOwner,
		pool: newPool(maxCopiers()), written: map[string]bool{}, linked: map[string]string{},
		reused: newReuser(o.Reuse)}
	defer c.reused.close()
	defer c.pool.wait() // never return with copies still running (they use c.reused)
	if o.Chown != "" {
		uid, gid, err := user.LookupChown(destRoot, o.Chown)
		if err != nil {
			return fmt.Errorf("resolving --chown=%s: %w", o.Chown, err)
		}
		c.chown, c.uid, c.gid = true, uid, gid
	}
	if o.Chmod != "" {
		if c.chmod, err = parseChmod(o.Chmod); err != nil {
			return err
		}
	}
	s, err := newSelector(srcRoot, o)
	if err != nil {
		return err
	}

	destClean := path.Clean("/" + o.Dest)
	dirHint := destClean == "/" || strings.HasSuffix(o.Dest, "/") || strings.HasSuffix(o.Dest, "/.") || o.Dest == "."
	destIsDir, err := isDirIn(destRoot, destClean)
	if err != nil {
		return err
	}
	matches, _, err := s.expand(ctx, o.Sources)
	if err != nil {
		return err
	}
	// Several sources, or a wildcard matching several, need a directory
	// unless all are directories, whose contents merge there (as do
	// --parents sources), or, for ADD, local archives, each extracted
	// into dest whatever its name says (BuildKit: every source is its own
	// copy with AttemptUnpack, and an archive always unpacks into a
	// directory); a wildcard matching one file may name the file
	// (COPY *.jar /app.jar). BuildKit would let each plain file
	// overwrite the last; this says so instead.
	if (len(o.Sources) > 1 || len(matches) > 1) && !o.Parents && !dirHint && !destIsDir {
		for _, m := range matches {
			switch {
			case m.node.fi.IsDir():
			case o.Unpack && isArchive(m.node.abs):
			case o.Unpack:
				return ErrAddDestNotDir
			default:
				return ErrDestNotDir
			}
		}
	}
	if len(matches) == 0 {
		return nil
	}

	// Missing parents are owned by the --chown owner, else root, and are
	// 0755 or, with --chmod, its mode (fsutil#228, BuildKit since 0.21).
	puid, pgid := uint32(0), uint32(0)
	if c.chown {
		puid, pgid = c.uid, c.gid
	}
	pmode := uint32(0o755)
	if c.chmod != nil {
		pmode = c.chmod(0o755, true)
	}
	parent, err := mkdirAll(destRoot, path.Dir(destClean), pmode, puid, pgid)
	if err != nil {
		return err
	}
	base := path.Base(destClean)
	destPath := filepath.Join(parent, base)
	var dirTimes []*node // directories whose contents went to their dest
	if destClean == "/" {
		destPath = destRoot
	}
	for _, m := range matches {
		if err := ctx.Err(); err != nil {
			return err
		}
		if o.Unpack && m.node.fi.Mode().IsRegular() {
			if r, ok, err := openArchive(m.node.abs); err != nil {
				return fmt.Errorf("archive %s: %w", m.lit, err)
			} else if ok {
				dir, err := mkdirAll(destRoot, destClean, pmode, puid, pgid)
				if err == nil {
					err = extract(ctx, r, dir, c, o.Limits)
				}
				r.Close()
				if err != nil {
					return fmt.Errorf("archive %s: %w", m.lit, err)
				}
				continue
			}
		}
		switch {
		case m.node.fi.IsDir():
			// A directory's contents go into dest. A missing dest is made
			// like a missing parent (not with the directory's mode and
			// owner: fsutil#47); it takes the directory's times once
			// filled, existing or not.
			if _, err := os.Lstat(destPath); errors.Is(err, os.ErrNotExist) {
				if _, err := mkdirAll(destRoot, destClean, pmode, puid, pgid); err != nil {
					return err
				}
			}
			m.node.dest = destPath
		case dirHint || destIsDir:
			dir, err := mkdirAll(destRoot, destClean, pmode, puid, pgid)
			if err != nil {
				return err
			}
			m.node.dest = filepath.Join(dir, path.Base(m.lit))
		default:
			m.node.dest = destPath
		}
		if err := s.walk(ctx, m.scope, m.node, !m.excluded, m.excluded && s.reincludes(), c); err != nil {
			return err
		}
		if m.node.fi.IsDir() {
			dirTimes = append(dirTimes, m.node)
		}
	}
	if err := c.pool.wait(); err != nil {
		return err
	}
	for _, n := range dirTimes {
		if err := setTimes(n.dest, n.fi.Sys().(*syscall.Stat_t)); err != nil {
			return err
		}
	}
	return nil
}

// Mkdir creates p (absolute in root) and its missing parents with mode and
// the owner chown ("" = 0:0) resolved via user.LookupChown. An existing
// directory is left alone.
func Mkdir(ctx context.Context, root, p, chown string, mode os.FileMode) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	root, err := cleanRoot(root)
	if err != nil {
		return err
	}
	uid, gid, err := user.LookupChown(root, chown)
	if err != nil {
		return fmt.Errorf("resolving owner %q for %s: %w", chown, p, err)
	}
	_, err = mkdirAll(root, p, unixMode(mode), uid, gid)
	return err
}

func cleanRoot(root string) (string, error) {
	if root == "" {
		return "", errors.New("empty root directory")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("resolving root %s: %w", root, err)
	}
	return abs, nil
}

// unixMode turns Go's mode bits into the permission and special bits of
// chmod(2).
func unixMode(m os.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}
