//go:build linux

package layer

import (
	"container/list"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Root is a directory that archive entries are extracted into, worked on
// through file descriptors. The parents of an entry are resolved inside it
// with symlinks scoped to it, as in a chroot: an absolute target starts at
// the root and ".." stops there. The last component of an entry is never
// followed. Nothing else may change the tree while a Root is in use.
//
// Resolved directories stay open in a small cache keyed by name, so that
// each entry of a deep tree costs a few system calls, not one per level.
type Root struct {
	fd       int
	path     string
	maxDepth int
	top      cachedDir // the root itself
	cache    map[string]*list.Element
	lru      *list.List // of *cachedDir, most recently used first
}

type cachedDir struct {
	fd  int
	key string // the name it was looked up by
	rel string // its path below the root, symlinks resolved; "" is the root
}

const (
	dirCacheSize = 64
	maxSymlinks  = 40 // Linux's MAXSYMLINKS: more is ELOOP
)

// OpenRoot opens dir for extraction; l.MaxDepth (or its default) bounds
// how deep entries may be once the symlinks in their parents are followed.
func OpenRoot(dir string, l Limits) (*Root, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return &Root{fd: fd, path: dir, maxDepth: l.withDefaults().MaxDepth, top: cachedDir{fd: fd},
		cache: map[string]*list.Element{}, lru: list.New()}, nil
}

// Close closes the root and every directory it keeps open.
func (r *Root) Close() error {
	r.flush()
	return unix.Close(r.fd)
}

// flush forgets every resolved directory: what a name resolves to may have
// changed.
func (r *Root) flush() {
	for e := r.lru.Front(); e != nil; e = e.Next() {
		_ = unix.Close(e.Value.(*cachedDir).fd)
	}
	r.lru.Init()
	clear(r.cache)
}

func (r *Root) add(key string, fd int, rel string) *cachedDir {
	d := &cachedDir{fd: fd, key: key, rel: rel}
	r.cache[key] = r.lru.PushFront(d)
	if r.lru.Len() > dirCacheSize {
		old := r.lru.Remove(r.lru.Back()).(*cachedDir)
		delete(r.cache, old.key)
		_ = unix.Close(old.fd)
	}
	return d
}

// Parent is the open directory that holds one entry.
type Parent struct {
	Fd   int    // the directory, open read-only; Close closes it
	Rel  string // its path below the root, symlinks resolved; "" is the root
	Base string // the entry's own name in it, never followed
	root string
}

// Close closes the directory.
func (p Parent) Close() error { return unix.Close(p.Fd) }

// Path is the entry's host path, for messages and for the calls that have
// no descriptor-relative form (lsetxattr). Its parents hold no symlinks.
func (p Parent) Path() string { return filepath.Join(p.root, p.Rel, p.Base) }

// Parent opens the directory that holds rel (an EntryName, not ""),
// creating the missing directories on the way (mode 0755, owned by the
// caller), and following symlinks inside the root.
func (r *Root) Parent(rel string) (Parent, error) { return r.parent(rel, true) }

// Lookup is Parent without creating anything: a missing parent is an
// error that matches fs.ErrNotExist.
func (r *Root) Lookup(rel string) (Parent, error) { return r.parent(rel, false) }

func (r *Root) parent(rel string, create bool) (Parent, error) {
	dir, base := "", rel
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		dir, base = rel[:i], rel[i+1:]
	}
	links := 0
	d, err := r.resolve(dir, create, &links)
	if err != nil {
		return Parent{}, err
	}
	if depth := Depth(d.rel) + 1; create && r.maxDepth > 0 && depth > r.maxDepth {
		return Parent{}, &LimitError{Entry: rel, What: "resolved depth", Value: int64(depth), Max: int64(r.maxDepth)}
	}
	fd, err := unix.FcntlInt(uintptr(d.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return Parent{}, fmt.Errorf("duplicating the descriptor of %s: %w", r.show(d.rel, ""), err)
	}
	return Parent{Fd: fd, Rel: d.rel, Base: base, root: r.path}, nil
}

func (r *Root) show(rel, base string) string { return filepath.Join(r.path, rel, base) }

// resolve returns the directory key names (a clean relative path, "" for
// the root). The result stays valid until the next call that adds to the
// cache or flushes it.
func (r *Root) resolve(key string, create bool, links *int) (*cachedDir, error) {
	if key == "" {
		return &r.top, nil
	}
	if e, ok := r.cache[key]; ok {
		r.lru.MoveToFront(e)
		return e.Value.(*cachedDir), nil
	}
	pkey, base := "", key
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		pkey, base = key[:i], key[i+1:]
	}
	p, err := r.resolve(pkey, create, links)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	err = unix.Fstatat(p.fd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT) && create:
		if err := unix.Mkdirat(p.fd, base, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, &os.PathError{Op: "mkdir", Path: r.show(p.rel, base), Err: err}
		}
	case err != nil:
		return nil, &os.PathError{Op: "lstat", Path: r.show(p.rel, base), Err: err}
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		if *links++; *links > maxSymlinks {
			return nil, &os.PathError{Op: "resolve", Path: r.show(p.rel, base), Err: unix.ELOOP}
		}
		target, err := readlinkAt(p.fd, base)
		if err != nil {
			return nil, &os.PathError{Op: "readlink", Path: r.show(p.rel, base), Err: err}
		}
		// Scoped to the root: an absolute target starts there, and ".."
		// cannot climb above it.
		if !path.IsAbs(target) {
			target = p.rel + "/" + target
		}
		d, err := r.resolve(strings.TrimPrefix(path.Clean("/"+target), "/"), create, links)
		if err != nil {
			return nil, err
		}
		fd, err := unix.FcntlInt(uintptr(d.fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("duplicating the descriptor of %s: %w", r.show(d.rel, ""), err)
		}
		return r.add(key, fd, d.rel), nil
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return nil, &os.PathError{Op: "open", Path: r.show(p.rel, base), Err: unix.ENOTDIR}
	}
	fd, err := unix.Openat(p.fd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: r.show(p.rel, base), Err: err}
	}
	return r.add(key, fd, path.Join(p.rel, base)), nil
}

func readlinkAt(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// Clear makes room for a new entry at p: what is there is removed (a
// directory with everything in it), unless it and the new entry are both
// directories (dir), in which case kept is true and the two merge.
func (r *Root) Clear(p Parent, dir bool) (kept bool, err error) {
	var st unix.Stat_t
	if err := unix.Fstatat(p.Fd, p.Base, &st, unix.AT_SYMLINK_NOFOLLOW); errors.Is(err, unix.ENOENT) {
		return false, nil
	} else if err != nil {
		return false, &os.PathError{Op: "lstat", Path: p.Path(), Err: err}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if dir {
			return true, nil
		}
		r.flush() // cached directories may lie below it
	case unix.S_IFLNK:
		r.flush() // cached directories may have been reached through it
	}
	if err := removeAllAt(p.Fd, p.Base); err != nil {
		return false, &os.PathError{Op: "remove", Path: p.Path(), Err: err}
	}
	return false, nil
}

// removeAllAt removes name in dirfd and, if it is a directory, everything
// in it, never following a symlink.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	for {
		// From the start each time: removing entries while reading a
		// directory may make the reading skip some.
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		names, err := f.Readdirnames(1024)
		if len(names) == 0 {
			if err != nil && err != io.EOF {
				return err
			}
			break
		}
		for _, n := range names {
			if err := removeAllAt(fd, n); err != nil {
				return err
			}
		}
	}
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}

// Link makes p (cleared first) a hard link to linkname, an archive name
// resolved like an entry's: its parents inside the root, its last
// component not followed, so a link to a symlink links the symlink. A
// link to a directory, to the root or to a missing file is refused; a
// link to itself changes nothing.
func (r *Root) Link(p Parent, linkname string) error {
	rel, err := EntryName(linkname)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", linkname, err)
	}
	if rel == "" {
		return fmt.Errorf("hard link target %q is the extraction root", linkname)
	}
	t, err := r.Lookup(rel)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", linkname, err)
	}
	defer t.Close()
	var st unix.Stat_t
	if err := unix.Fstatat(t.Fd, t.Base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("hard link target %q: %w", linkname, &os.PathError{Op: "lstat", Path: t.Path(), Err: err})
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("hard link target %q is a directory", linkname)
	}
	if t.Rel == p.Rel && t.Base == p.Base {
		return nil
	}
	if _, err := r.Clear(p, false); err != nil {
		return err
	}
	if err := unix.Linkat(t.Fd, t.Base, p.Fd, p.Base, 0); err != nil {
		return &os.LinkError{Op: "link", Old: t.Path(), New: p.Path(), Err: err}
	}
	return nil
}

// Chown sets the owner of the entry at p, through fd if it is open (-1 if not),
// never following a symlink.
func (p Parent) Chown(fd, uid, gid int) error {
	var err error
	if fd >= 0 {
		err = unix.Fchown(fd, uid, gid)
	} else {
		err = unix.Fchownat(p.Fd, p.Base, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return &os.PathError{Op: "chown", Path: p.Path(), Err: err}
	}
	return nil
}

// Chmod sets the mode (permission and set-id bits) of the entry at p, never a symlink: through fd
// if it is open, else by name for a device or fifo just made there.
func (p Parent) Chmod(fd int, mode uint32) error {
	var err error
	if fd >= 0 {
		err = unix.Fchmod(fd, mode)
	} else {
		err = unix.Fchmodat(p.Fd, p.Base, mode, 0)
	}
	if err != nil {
		return &os.PathError{Op: "chmod", Path: p.Path(), Err: err}
	}
	return nil
}

// SetTimes sets the entry's access and modification times to mtime,
// never following a symlink.
func SetTimes(p Parent, mtime time.Time) error {
	// Not UnixNano: it is undefined outside 1678..2262.
	ts := unix.Timespec{Sec: mtime.Unix(), Nsec: int64(mtime.Nanosecond())}
	if err := unix.UtimesNanoAt(p.Fd, p.Base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: p.Path(), Err: err}
	}
	return nil
}

// SetDirTimes gives each directory named in times (by EntryName) its time,
// after the extraction: creating entries in a directory changes its mtime.
// A name that no longer leads to a directory is skipped.
func (r *Root) SetDirTimes(times map[string]time.Time) error {
	names := make([]string, 0, len(times))
	for n := range times {
		names = append(names, n)
	}
	sort.Strings(names) // parents first, while they are in the cache
	for _, n := range names {
		p, err := r.Lookup(n)
		if err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
				continue // its parents changed since: it is gone
			}
			return err
		}
		var st unix.Stat_t
		if err := unix.Fstatat(p.Fd, p.Base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = SetTimes(p, times[n])
			if err != nil {
				p.Close()
				return err
			}
		}
		p.Close()
	}
	return nil
}
