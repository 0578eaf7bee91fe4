package executor

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/xattr"
)

// stubs are what extraMounts created in the rootfs for its mount points.
type stubs struct {
	// Created are the mount points and the missing parents made for them,
	// relative to the rootfs, outermost first.
	Created []string `json:"created,omitempty"`
	// Parents are the existing directories they were made in, with their
	// mtimes before and after, so that removing the stubs can undo the
	// change if nothing else touched them.
	Parents []stubParent `json:"parents,omitempty"`
}

type stubParent struct {
	Rel      string `json:"rel"`
	BeforeNs int64  `json:"before"` // mtime, Unix ns
	AfterNs  int64  `json:"after"`
}

// extraMounts mounts ms under rootfs (before pivot_root) and returns the
// mount points it had to create. Every target is resolved inside rootfs
// and mounted through the fd it resolved to, never by path again: a
// process of another step sharing a cache mount cannot swap a directory on
// the way for a symlink between the check and the mount (BuildKit's
// CVE-2024-23651, buildah's CVE-2024-9675).
func extraMounts(rootfs string, ms []Mount) (stubs, error) {
	var made stubs
	root, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return made, fmt.Errorf("opening the rootfs: %w", err)
	}
	defer root.Close()
	if rootfs, err = os.Readlink(fdPath(root)); err != nil {
		return made, fmt.Errorf("opening the rootfs: %w", err)
	}
	parents := map[string]int{} // rel → index in made.Parents
	for _, m := range ms {
		src, err := mountSource(m)
		if err != nil {
			return made, fmt.Errorf("mount source for %s: %w", m.Target, err)
		}
		isFile := false
		if src != nil {
			var st unix.Stat_t
			if err := unix.Fstat(int(src.Fd()), &st); err != nil {
				src.Close()
				return made, fmt.Errorf("mount source for %s: %w", m.Target, err)
			}
			isFile = st.Mode&unix.S_IFMT != unix.S_IFDIR
		}
		mp, err := mountTarget(root, rootfs, m.Target, isFile, m.Optional)
		if mp.parentRel != "" && len(mp.created) > 0 {
			i, seen := parents[mp.parentRel]
			if !seen {
				i = len(made.Parents)
				parents[mp.parentRel] = i
				made.Parents = append(made.Parents, stubParent{Rel: mp.parentRel, BeforeNs: mp.parentBefore})
			}
			made.Parents[i].AfterNs = mp.parentAfter
		}
		made.Created = append(made.Created, mp.created...)
		if err == nil && mp.fd == nil { // optional and of the wrong type: skipped
			if src != nil {
				src.Close()
			}
			continue
		}
		if err != nil {
			if src != nil {
				src.Close()
			}
			return made, fmt.Errorf("mount point %s: %w", m.Target, err)
		}
		err = mountOne(m, src, fdPath(mp.fd))
		mp.fd.Close()
		if src != nil {
			src.Close()
		}
		if err != nil {
			return made, fmt.Errorf("mounting %s on %s: %w", m.Type, m.Target, err)
		}
	}
	return made, nil
}

// fdPath names an open file by its magic link, which mount(2) and
// mount_setattr(2) follow to exactly that file.
func fdPath(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }

// mountSource opens what a bind mount (or an overlay's subpath) shows, as
// an O_PATH fd: m.Source itself, or m.Subpath resolved inside it, so a
// subpath of a cache shared with running steps cannot lead out of it.
// Other mounts have no source (nil).
func mountSource(m Mount) (*os.File, error) {
	if m.Type != "bind" {
		return nil, nil
	}
	if m.Subpath == "" || m.Subpath == "/" || m.Subpath == "." {
		return os.OpenFile(m.Source, unix.O_PATH|unix.O_CLOEXEC, 0)
	}
	base, err := os.OpenFile(m.Source, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer base.Close()
	return pathrs.OpenatInRoot(base, m.Subpath)
}

// mountPointResult is an opened mount point and what was made for it.
type mountPointResult struct {
	fd                        *os.File // O_PATH; nil when an optional target was skipped
	created                   []string // relative to the rootfs, outermost first
	parentRel                 string   // the existing dir they were made in
	parentBefore, parentAfter int64    // its mtime before and after, Unix ns
}

// mountTarget opens target inside the rootfs, making it (a directory, or an
// empty file if file) and its missing parents first. Symlinks on the way
// resolve inside the rootfs (RESOLVE_IN_ROOT, as runc and BuildKit join
// mount targets); what kiln creates is opened with O_NOFOLLOW, so a swap
// to a symlink fails instead of redirecting the mount.
func mountTarget(root *os.File, rootfs, target string, file, optional bool) (mountPointResult, error) {
	var r mountPointResult
	comps := strings.Split(strings.Trim(path.Clean("/"+target), "/"), "/")
	if len(comps) == 1 && comps[0] == "" {
		comps = nil
	}
	// The deepest part of the path that exists already.
	var cur *os.File
	n := len(comps)
	for ; n >= 0; n-- {
		f, err := pathrs.OpenatInRoot(root, "/"+strings.Join(comps[:n], "/"))
		if err == nil {
			cur = f
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return r, err
		}
	}
	if cur == nil {
		return r, errors.New("the rootfs is gone")
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(cur.Fd()), &st); err != nil {
		cur.Close()
		return r, err
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	if n == len(comps) {
		wrong := isDir == file || (!isDir && st.Mode&unix.S_IFMT != unix.S_IFREG)
		if wrong && optional {
			cur.Close()
			return r, nil
		}
		if isDir == file {
			cur.Close()
			return r, fmt.Errorf("exists and is not a %s", map[bool]string{true: "file", false: "directory"}[file])
		}
		r.fd = cur
		return r, nil
	}
	if !isDir {
		cur.Close()
		return r, fmt.Errorf("/%s is not a directory", strings.Join(comps[:n], "/"))
	}
	// Where the existing part really is (symlinks resolved), for the stubs.
	real, err := os.Readlink(fdPath(cur))
	if err != nil {
		cur.Close()
		return r, err
	}
	rel, err := filepath.Rel(rootfs, real)
	if err != nil || strings.HasPrefix(rel, "..") {
		cur.Close()
		return r, fmt.Errorf("resolved outside the rootfs (%s)", real)
	}
	r.parentRel, r.parentBefore = rel, st.Mtim.Nano()
	for i := n; i < len(comps); i++ {
		name := comps[i]
		last := i == len(comps)-1
		var err error
		if last && file {
			var fd int
			fd, err = unix.Openat(int(cur.Fd()), name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
			if err == nil {
				unix.Close(fd)
			}
		} else {
			err = unix.Mkdirat(int(cur.Fd()), name, 0o755)
		}
		if err != nil {
			cur.Close()
			return r, fmt.Errorf("creating %s: %w", name, err)
		}
		r.created = append(r.created, filepath.Join(rel, filepath.Join(comps[n:i+1]...)))
		if i == n {
			var pst unix.Stat_t
			if unix.Fstat(int(cur.Fd()), &pst) == nil {
				r.parentAfter = pst.Mtim.Nano()
			}
		}
		flags := unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if !(last && file) {
			flags |= unix.O_DIRECTORY
		}
		fd, err := unix.Openat(int(cur.Fd()), name, flags, 0)
		cur.Close()
		if err != nil {
			return r, fmt.Errorf("opening %s: %w", name, err)
		}
		cur = os.NewFile(uintptr(fd), name)
	}
	r.fd = cur
	return r, nil
}

// mountOne mounts m on target (a /proc/self/fd path), src being its open
// source for binds. Every mount is nodev: only the /dev kiln makes has
// usable device nodes, whatever a layer, archive, bind or mknod brings.
func mountOne(m Mount, src *os.File, target string) error {
	switch m.Type {
	case "bind":
		return bindAt(fdPath(src), target, m.ReadOnly)
	case "tmpfs":
		data := "mode=1777"
		if m.Size > 0 {
			data += fmt.Sprintf(",size=%d", m.Size)
		}
		return unix.Mount("tmpfs", target, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, data)
	case "overlay":
		o := overlay{Lowers: m.Lowers, Upper: m.Upper, Work: m.Work}
		if m.Subpath == "" || m.Subpath == "/" || m.Subpath == "." {
			return mountOverlay(target, o)
		}
		if err := mountOverlay(m.Staging, o); err != nil {
			return err
		}
		staging, err := os.OpenFile(m.Staging, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer staging.Close()
		sub, err := pathrs.OpenatInRoot(staging, m.Subpath)
		if err != nil {
			return err
		}
		defer sub.Close()
		return bindAt(fdPath(sub), target, m.ReadOnly || m.Upper == "")
	}
	return fmt.Errorf("unknown mount type %q", m.Type)
}

// removeStubs deletes from upper the mount points the child created (and
// the parents it created for them) that are still empty after the run, as
// BuildKit's MountStubsCleaner does: no stub of a secret, cache or bind
// target reaches the layer. Created is outermost first, so it is undone
// innermost first. A directory the stubs were made in gets its mtime back
// when nothing else changed it, so the layer is the same as without them.
//
// The process may have replaced any of those paths with a symlink to a host
// directory (BuildKit's CVE-2024-23652), so every path is walked from upper
// by fd without following a symlink, and a path through one is left alone.
func removeStubs(upper string, lowers []string, st stubs) {
	inside := func(rel string) bool {
		return rel != "" && rel != "." && !strings.HasPrefix(rel, "..") && !filepath.IsAbs(rel)
	}
	restore := make([]int64, len(st.Parents)) // mtime to set after the removals, 0 = none
	for i, par := range st.Parents {
		if !inside(par.Rel) {
			continue
		}
		fi, ok := lstatIn(upper, par.Rel)
		if !ok {
			continue // not in the upper dir: the stubs were made inside another mount
		}
		restore[i] = fi.Mtim.Nano() // the run changed it: keep its change
		if restore[i] == par.AfterNs {
			restore[i] = par.BeforeNs
		}
	}
	for i := len(st.Created) - 1; i >= 0; i-- {
		if rel := st.Created[i]; inside(rel) {
			removeIfEmpty(upper, rel)
		}
	}
	for i, par := range st.Parents {
		if !inside(par.Rel) || restore[i] == 0 {
			continue
		}
		dir, base, err := openParent(upper, par.Rel)
		if err != nil {
			continue
		}
		ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(restore[i])}
		_ = unix.UtimesNanoAt(dir, base, ts, unix.AT_SYMLINK_NOFOLLOW)
		unix.Close(dir)
	}
	// overlayfs copied the stubs' parents up; one that is now empty and as
	// it is below was changed by nothing but the stubs, so it goes too
	// (BuildKit's overlay differ skips such dirs).
	for _, par := range st.Parents {
		for rel := par.Rel; inside(rel); rel = filepath.Dir(rel) {
			if !unchangedCopyUp(upper, lowers, rel) || !removeIfEmpty(upper, rel) {
				break
			}
		}
	}
}

// openParent opens the directory holding rel inside root, refusing to
// follow a symlink on the way, and returns its fd and rel's last name.
func openParent(root, rel string) (int, string, error) {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", err
	}
	parts := strings.Split(filepath.Clean(rel), "/")
	for _, p := range parts[:len(parts)-1] {
		next, err := unix.Openat(fd, p, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			return -1, "", err
		}
		fd = next
	}
	return fd, parts[len(parts)-1], nil
}

// lstatIn is lstat of rel inside root with no symlink followed.
func lstatIn(root, rel string) (unix.Stat_t, bool) {
	var st unix.Stat_t
	dir, base, err := openParent(root, rel)
	if err != nil {
		return st, false
	}
	defer unix.Close(dir)
	return st, unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}

// removeIfEmpty removes rel inside root if it is an empty directory or an
// empty regular file, and reports whether it did.
func removeIfEmpty(root, rel string) bool {
	dir, base, err := openParent(root, rel)
	if err != nil {
		return false
	}
	defer unix.Close(dir)
	var st unix.Stat_t
	if unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return false
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		// rmdir fails on a directory that is not empty: no need to look.
		return unix.Unlinkat(dir, base, unix.AT_REMOVEDIR) == nil
	case unix.S_IFREG:
		return st.Size == 0 && unix.Unlinkat(dir, base, 0) == nil
	}
	return false
}

// unchangedCopyUp reports whether the upper dir rel is empty, not opaque,
// and has the mode, owner and mtime of rel in the topmost lower that has it.
func unchangedCopyUp(upper string, lowers []string, rel string) bool {
	dir, base, err := openParent(upper, rel)
	if err != nil {
		return false
	}
	defer unix.Close(dir)
	fd, err := unix.Openat(dir, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	var up unix.Stat_t
	if unix.Fstat(fd, &up) != nil {
		return false
	}
	if names, err := f.Readdirnames(1); err != io.EOF || len(names) > 0 {
		return false
	}
	if v, _ := xattr.FGet(fd, "trusted.overlay.opaque"); len(v) > 0 {
		return false
	}
	for i := len(lowers) - 1; i >= 0; i-- {
		lo, ok := lstatIn(lowers[i], rel)
		if !ok {
			continue
		}
		return lo.Mode == up.Mode && lo.Uid == up.Uid && lo.Gid == up.Gid && lo.Mtim == up.Mtim
	}
	return false
}
