//go:build linux

package fscopy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Reuse lets a copy take unchanged files from the snapshot an earlier run
// of the same COPY (same instruction, same base) made, as hard links,
// instead of copying them again: a context of tens of thousands of files
// in which one changed is then tens of thousands of link(2) calls. A
// snapshot is never changed once made, so sharing its inodes is safe.
type Reuse struct {
	// Snapshot is the earlier run's layer dir (an overlay upper dir).
	Snapshot string `json:"snapshot"`
	// Upper is the upper dir of the overlay mounted at destRoot, where
	// links go directly (link(2) cannot cross into the overlay mount).
	// Set by the executor; "" disables reuse.
	Upper string `json:"upper,omitempty"`
	// Files are the source paths (relative to srcRoot, as Walk gives
	// them) whose type, mode, owner, size, data and xattrs are what they
	// were in the earlier run (the solver compares their digests).
	Files map[string]bool `json:"files"`
}

// reuser holds the open roots of a Reuse, and the dirs under them opened
// so far, for one Copy.
type reuser struct {
	*Reuse
	roots [2]int // O_PATH fds of Snapshot and Upper

	mu   sync.Mutex
	dirs map[dirKey]int // kept open until close, at most maxDirs
}

const (
	inSnapshot = 0
	inUpper    = 1
	maxDirs    = 256
)

type dirKey struct {
	tree int
	rel  string
}

func newReuser(r *Reuse) *reuser {
	if r == nil || r.Upper == "" || r.Snapshot == "" || len(r.Files) == 0 {
		return nil
	}
	u := &reuser{Reuse: r, dirs: map[dirKey]int{}}
	for i, p := range []string{r.Snapshot, r.Upper} {
		fd, err := unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			if i == 1 {
				unix.Close(u.roots[0])
			}
			return nil
		}
		u.roots[i] = fd
	}
	return u
}

func (u *reuser) close() {
	if u == nil {
		return
	}
	for _, fd := range u.dirs {
		unix.Close(fd)
	}
	unix.Close(u.roots[0])
	unix.Close(u.roots[1])
}

// dir opens the directory rel ("." for the root) of one tree without
// following any symlink, so that a link in either tree can never point the
// copy at a file outside them. release closes it unless it is kept.
func (u *reuser) dir(tree int, rel string) (fd int, release func(), err error) {
	if rel == "." {
		return u.roots[tree], func() {}, nil
	}
	k := dirKey{tree, rel}
	u.mu.Lock()
	fd, ok := u.dirs[k]
	u.mu.Unlock()
	if ok {
		return fd, func() {}, nil
	}
	fd, err = unix.Openat2(u.roots[tree], rel, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	})
	if err != nil {
		return -1, nil, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if old, ok := u.dirs[k]; ok { // another copy opened it meanwhile
		unix.Close(fd)
		return old, func() {}, nil
	}
	if len(u.dirs) >= maxDirs {
		return fd, func() { unix.Close(fd) }, nil
	}
	u.dirs[k] = fd
	return fd, func() {}, nil
}

// reuse tries to put the regular file n at dst as a hard link to the same
// path in the earlier snapshot, which must hold a file with exactly the
// metadata the copy would give it (its data is n's: see Reuse.Files). It
// reports whether it did; when it did not, the caller copies as usual.
func (c *copier) reuse(n *node, dst string, st *syscall.Stat_t, uid, gid int) bool {
	u := c.reused
	if u == nil || !u.Files[n.rel] || !strings.HasPrefix(dst, c.destRoot+"/") {
		return false
	}
	rel := strings.TrimPrefix(dst, c.destRoot+"/")
	dirRel, base := filepath.Dir(rel), filepath.Base(rel)
	sfd, release, err := u.dir(inSnapshot, dirRel)
	if err != nil {
		return false
	}
	defer release()
	// The snapshot never changes: what is checked here is what gets linked
	// (linkat does not follow a symlink, and this is a regular file).
	var ost unix.Stat_t
	if err := unix.Fstatat(sfd, base, &ost, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return false
	}
	if ost.Mode&unix.S_IFMT != unix.S_IFREG || ost.Mode&0o7777 != c.mode(st, false) ||
		int(ost.Uid) != uid || int(ost.Gid) != gid || ost.Size != st.Size ||
		ost.Mtim.Sec != st.Mtim.Sec || ost.Mtim.Nsec != st.Mtim.Nsec {
		return false
	}
	pfd, releaseUp, err := u.dir(inUpper, dirRel)
	if errors.Is(err, unix.ENOENT) {
		// The directory is only in a lower layer so far: a no-op chown
		// through the overlay copies it up without changing anything a
		// layer records.
		if os.Lchown(filepath.Dir(dst), -1, -1) == nil {
			pfd, releaseUp, err = u.dir(inUpper, dirRel)
		}
	}
	if err != nil {
		return false
	}
	defer releaseUp()
	// EEXIST (a whiteout left by replacing a lower file) and anything else
	// leave it to copying.
	if err := unix.Linkat(sfd, base, pfd, base, 0); err != nil {
		return false
	}
	c.linkMu.Lock()
	c.linked[dst] = rel
	c.linkMu.Unlock()
	return true
}

// unlink undoes a reuse link at dst before dst is written again: the
// overlay never saw the link (it went to the upper dir directly), so going
// through the overlay from here on needs it gone.
// The caller has waited for every copy (settle).
func (c *copier) unlink(dst string) error {
	c.linkMu.Lock()
	rel, ok := c.linked[dst]
	delete(c.linked, dst)
	c.linkMu.Unlock()
	if !ok {
		return nil
	}
	pfd, release, err := c.reused.dir(inUpper, filepath.Dir(rel))
	if err == nil {
		err = unix.Unlinkat(pfd, filepath.Base(rel), 0)
		release()
	}
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return &os.PathError{Op: "unlink", Path: filepath.Join(c.reused.Upper, rel), Err: err}
	}
	return nil
}

// isLinked reports whether dst is a reuse link (after settle).
func (c *copier) isLinked(dst string) bool {
	c.linkMu.Lock()
	defer c.linkMu.Unlock()
	_, ok := c.linked[dst]
	return ok
}
