//go:build linux

package fscopy

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

type devIno struct{ dev, ino uint64 }

// copier is the visitor that writes selected entries into destRoot.
type copier struct {
	destRoot     string
	chown        bool // uid, gid override the source owner
	uid, gid     uint32
	contextOwner bool
	chmod        func(mode uint32, dir bool) uint32 // nil keeps the mode
	links        map[devIno]string                  // source inode → first dest path
	pool         *pool                              // copies regular files concurrently
	written      map[string]bool                    // dest paths written so far (by the walk)
	reused       *reuser                            // nil: copy every file
	linkMu       sync.Mutex
	linked       map[string]string // dest → path in the upper dir, of reuse links
}

func (c *copier) destOf(n *node) string {
	if n.dest == "" {
		n.dest = filepath.Join(n.parent.dest, n.name)
	}
	return n.dest
}

func (c *copier) owner(st *syscall.Stat_t) (int, int) {
	switch {
	case c.chown:
		return int(c.uid), int(c.gid)
	case c.contextOwner:
		return 0, 0
	}
	return int(st.Uid), int(st.Gid)
}

func (c *copier) mode(st *syscall.Stat_t, dir bool) uint32 {
	m := st.Mode & 0o7777
	if c.chmod != nil {
		m = c.chmod(m, dir)
	}
	return m
}

func (c *copier) enter(n *node) error {
	dst := c.destOf(n)
	if err := c.settle(dst); err != nil {
		return err
	}
	if c.isLinked(dst) {
		return fmt.Errorf("cannot copy directory %s onto non-directory %s", n.rel, c.show(dst))
	}
	fi, err := os.Lstat(dst)
	switch {
	case err == nil && fi.IsDir() && n.parent == nil:
		return nil // merge into the destination, which keeps its metadata
	case err == nil && fi.IsDir():
		// Merge; as in BuildKit (fsutil copy with overwriteTargetMetadata)
		// an existing directory below the destination takes the source
		// directory's owner now, its mode and times once filled.
		st := n.fi.Sys().(*syscall.Stat_t)
		uid, gid := c.owner(st)
		if err := lchownIfNeeded(dst, uid, gid); err != nil {
			return err
		}
		n.remeta = true
		n.refs = 1 // the walk's, dropped by leave
		return copyXattrs(n.abs, dst, false)
	case err == nil && fi.Mode()&os.ModeSymlink != 0:
		// Merge into what the link points to, resolved inside destRoot
		// (think /lib -> usr/lib).
		resolved, err := c.resolve(dst)
		if err != nil {
			return err
		}
		if rfi, err := os.Lstat(resolved); err == nil && rfi.IsDir() {
			n.dest = resolved
			return nil
		}
		return fmt.Errorf("cannot copy directory %s onto non-directory %s", n.rel, c.show(dst))
	case err == nil:
		return fmt.Errorf("cannot copy directory %s onto non-directory %s", n.rel, c.show(dst))
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("copying %s: %w", n.rel, err)
	}
	// Owner-only until filled, so a read-only source mode cannot lock us out.
	if err := os.Mkdir(dst, 0o700); err != nil {
		return fmt.Errorf("creating directory %s: %w", c.show(dst), err)
	}
	n.created = true
	n.refs = 1 // the walk's, dropped by leave
	c.written[dst] = true
	st := n.fi.Sys().(*syscall.Stat_t)
	uid, gid := c.owner(st)
	if err := lchownIfNeeded(dst, uid, gid); err != nil {
		return err
	}
	return copyXattrs(n.abs, dst, false)
}

func (c *copier) leave(n *node) error {
	if !n.created && !n.remeta {
		return nil
	}
	c.release(n)
	return c.pool.failed()
}

// finish sets a created (or remeta) directory's mode and times, once
// everything in it has been written.
func (c *copier) finish(n *node) error {
	st := n.fi.Sys().(*syscall.Stat_t)
	// Mode and times last: filling the directory changed its mtime.
	if err := unix.Chmod(n.dest, c.mode(st, true)); err != nil {
		return fmt.Errorf("chmod %s: %w", c.show(n.dest), err)
	}
	return setTimes(n.dest, st)
}

func (c *copier) leaf(n *node) error {
	dst := c.destOf(n)
	if err := c.settle(dst); err != nil {
		return err
	}
	if err := c.unlink(dst); err != nil {
		return err
	}
	st := n.fi.Sys().(*syscall.Stat_t)
	// In a directory this copy created, only this copy wrote: a path it
	// has not written cannot exist, and need not be looked up first.
	fresh := n.parent != nil && n.parent.created && !c.written[dst]
	c.written[dst] = true
	if fresh {
		// nothing to replace
	} else if fi, err := os.Lstat(dst); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("cannot overwrite directory %s with non-directory %s", c.show(dst), n.rel)
		}
		// Replace files and links themselves, never write through them.
		if err := os.Remove(dst); err != nil {
			return fmt.Errorf("replacing %s: %w", c.show(dst), err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("copying %s: %w", n.rel, err)
	}

	var key devIno
	if n.fi.Mode().IsRegular() && st.Nlink > 1 {
		key = devIno{uint64(st.Dev), st.Ino}
		if first, ok := c.links[key]; ok {
			if err := os.Link(first, dst); err == nil {
				return nil
			}
			// The first copy was replaced since: fall back to copying.
		}
	}

	uid, gid := c.owner(st)
	switch m := n.fi.Mode(); {
	case m.IsRegular():
		if key == (devIno{}) {
			var dir *node
			if n.parent != nil && (n.parent.created || n.parent.remeta) {
				dir = n.parent
			}
			c.spawn(dir, func() error {
				if c.reuse(n, dst, st, uid, gid) {
					return nil
				}
				return c.copyFile(n, dst, st, uid, gid)
			})
			return nil
		}
		// A hard link's first copy must exist before the next one links
		// to it: copied here, in walk order.
		if err := c.copyFile(n, dst, st, uid, gid); err != nil {
			return err
		}
		c.links[key] = dst
		return nil
	case m&os.ModeSymlink != 0:
		target, err := os.Readlink(n.abs)
		if err != nil {
			return fmt.Errorf("reading symlink %s: %w", n.rel, err)
		}
		if err := os.Symlink(target, dst); err != nil {
			return fmt.Errorf("creating symlink %s: %w", c.show(dst), err)
		}
		if err := lchownIfNeeded(dst, uid, gid); err != nil {
			return err
		}
		if err := copyXattrs(n.abs, dst, true); err != nil {
			return err
		}
		return setTimes(dst, st)
	case m&(os.ModeDevice|os.ModeNamedPipe|os.ModeSocket) != 0:
		if err := unix.Mknod(dst, st.Mode&unix.S_IFMT|0o600, int(st.Rdev)); err != nil {
			return fmt.Errorf("creating special file %s: %w", c.show(dst), err)
		}
		if err := lchownIfNeeded(dst, uid, gid); err != nil {
			return err
		}
		if err := unix.Chmod(dst, c.mode(st, false)); err != nil {
			return fmt.Errorf("chmod %s: %w", c.show(dst), err)
		}
		if err := copyXattrs(n.abs, dst, false); err != nil {
			return err
		}
		return setTimes(dst, st)
	}
	return fmt.Errorf("copying %s: unsupported file type %s", n.rel, n.fi.Mode().Type())
}

// resolve follows symlinks in p (inside destRoot) without leaving destRoot.
func (c *copier) resolve(p string) (string, error) {
	r, err := securejoin.SecureJoin(c.destRoot, c.show(p))
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", c.show(p), err)
	}
	return r, nil
}

// show returns p as a path inside destRoot, for messages and SecureJoin.
func (c *copier) show(p string) string {
	return "/" + strings.TrimPrefix(strings.TrimPrefix(p, c.destRoot), "/")
}

func lchownIfNeeded(p string, uid, gid int) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("chown %s: %w", p, err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) == uid && int(st.Gid) == gid {
		return nil
	}
	if err := os.Lchown(p, uid, gid); err != nil {
		return fmt.Errorf("chown %s: %w", p, err)
	}
	return nil
}

func setTimes(p string, st *syscall.Stat_t) error {
	ts := []unix.Timespec{
		{Sec: st.Atim.Sec, Nsec: st.Atim.Nsec},
		{Sec: st.Mtim.Sec, Nsec: st.Mtim.Nsec},
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("setting times on %s: %w", p, err)
	}
	return nil
}

// isDirIn reports whether p (absolute in root) is a directory, following
// symlinks inside root.
func isDirIn(root, p string) (bool, error) {
	r, err := securejoin.SecureJoin(root, p)
	if err != nil {
		return false, fmt.Errorf("resolving %s: %w", p, err)
	}
	fi, err := os.Stat(r)
	if err != nil {
		if securejoin.IsNotExist(err) {
			return false, nil
		}
		return false, fmt.Errorf("stat %s: %w", p, err)
	}
	return fi.IsDir(), nil
}

// mkdirAll creates p (absolute in root, symlinks followed inside root) and
// its missing parents with perm and owner, and returns its real path.
// Existing directories are not touched.
func mkdirAll(root, p string, perm uint32, uid, gid uint32) (string, error) {
	resolved, err := securejoin.SecureJoin(root, path.Clean("/"+p))
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", p, err)
	}
	rel, err := filepath.Rel(root, resolved)
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", p, err)
	}
	cur := root
	if rel == "." {
		return root, nil
	}
	for _, comp := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, comp)
		fi, err := os.Lstat(cur)
		if err == nil {
			if !fi.IsDir() {
				return "", fmt.Errorf("creating %s: %s is not a directory", p, "/"+strings.TrimPrefix(cur, root+"/"))
			}
			continue
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("creating %s: %w", p, err)
		}
		if err := os.Mkdir(cur, 0o700); err != nil {
			return "", fmt.Errorf("creating %s: %w", p, err)
		}
		if err := lchownIfNeeded(cur, int(uid), int(gid)); err != nil {
			return "", err
		}
		if err := unix.Chmod(cur, perm); err != nil {
			return "", fmt.Errorf("chmod %s: %w", cur, err)
		}
	}
	return resolved, nil
}
