package executor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
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
// mount points it had to create.
func extraMounts(rootfs string, ms []Mount) (stubs, error) {
	var made stubs
	parents := map[string]int{} // rel → index in made.Parents
	for _, m := range ms {
		target, err := securejoin.SecureJoin(rootfs, m.Target)
		if err != nil {
			return made, fmt.Errorf("mount target %s: %w", m.Target, err)
		}
		isFile := false
		if m.Type == "bind" {
			fi, err := os.Stat(m.Source)
			if err != nil {
				return made, fmt.Errorf("mount source for %s: %w", m.Target, err)
			}
			isFile = !fi.IsDir()
		}
		if m.Optional {
			if fi, err := os.Lstat(target); err == nil && (fi.IsDir() == isFile || !fi.IsDir() && !fi.Mode().IsRegular()) {
				continue
			}
		}
		var parentBefore int64
		parent := existingParent(target)
		if fi, err := os.Lstat(parent); err == nil {
			parentBefore = fi.ModTime().UnixNano()
		}
		created, err := mountPoint(target, isFile)
		if len(created) > 0 {
			rel, _ := filepath.Rel(rootfs, parent)
			i, seen := parents[rel]
			if !seen {
				i = len(made.Parents)
				parents[rel] = i
				made.Parents = append(made.Parents, stubParent{Rel: rel, BeforeNs: parentBefore})
			}
			if fi, err := os.Lstat(parent); err == nil {
				made.Parents[i].AfterNs = fi.ModTime().UnixNano()
			}
		}
		for _, p := range created {
			rel, _ := filepath.Rel(rootfs, p)
			made.Created = append(made.Created, rel)
		}
		if err != nil {
			return made, fmt.Errorf("mount point %s: %w", m.Target, err)
		}
		if err := mountOne(m, target); err != nil {
			return made, fmt.Errorf("mounting %s on %s: %w", m.Type, m.Target, err)
		}
	}
	return made, nil
}

// existingParent is the deepest existing directory on target's path
// (target itself if it exists).
func existingParent(target string) string {
	p := target
	for {
		if _, err := os.Lstat(p); err == nil || filepath.Dir(p) == p {
			return p
		}
		p = filepath.Dir(p)
	}
}

// mountPoint makes target exist as a dir or file and returns what it
// created for that, outermost first.
func mountPoint(target string, file bool) ([]string, error) {
	fi, err := os.Lstat(target)
	if err == nil {
		if fi.IsDir() == file {
			return nil, fmt.Errorf("exists and is not a %s", map[bool]string{true: "file", false: "directory"}[file])
		}
		return nil, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if !file {
		return mkdirAll(target)
	}
	made, err := mkdirAll(filepath.Dir(target))
	if err != nil {
		return made, err
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return made, err
	}
	return append(made, target), f.Close()
}

// mkdirAll is os.MkdirAll (0755) that returns the directories it created,
// outermost first.
func mkdirAll(dir string) ([]string, error) {
	var missing []string
	for p := dir; ; p = filepath.Dir(p) {
		_, err := os.Lstat(p)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	var made []string
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil {
			return made, err
		}
		made = append(made, missing[i])
	}
	return made, nil
}

func mountOne(m Mount, target string) error {
	switch m.Type {
	case "bind":
		if m.ReadOnly {
			return bindReadOnly(m.Source, target)
		}
		return unix.Mount(m.Source, target, "", unix.MS_BIND|unix.MS_REC, "")
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
		src, err := securejoin.SecureJoin(m.Staging, m.Subpath)
		if err != nil {
			return err
		}
		if m.ReadOnly || m.Upper == "" {
			return bindReadOnly(src, target)
		}
		return unix.Mount(src, target, "", unix.MS_BIND|unix.MS_REC, "")
	}
	return fmt.Errorf("unknown mount type %q", m.Type)
}

// removeStubs deletes from upper the mount points the child created (and
// the parents it created for them) that are still empty after the run, as
// BuildKit's MountStubsCleaner does: no stub of a secret, cache or bind
// target reaches the layer. Created is outermost first, so it is undone
// innermost first. A directory the stubs were made in gets its mtime back
// when nothing else changed it, so the layer is the same as without them.
func removeStubs(upper string, lowers []string, st stubs) {
	inside := func(rel string) (string, bool) {
		if rel == "" || rel == "." || strings.HasPrefix(rel, "..") || filepath.IsAbs(rel) {
			return "", false
		}
		return filepath.Join(upper, rel), true
	}
	restore := make([]int64, len(st.Parents)) // mtime to set after the removals, 0 = none
	for i, par := range st.Parents {
		p, ok := inside(par.Rel)
		if !ok {
			continue
		}
		fi, err := os.Lstat(p)
		if err != nil {
			continue // not in the upper dir: the stubs were made inside another mount
		}
		restore[i] = fi.ModTime().UnixNano() // the run changed it: keep its change
		if restore[i] == par.AfterNs {
			restore[i] = par.BeforeNs
		}
	}
	for i := len(st.Created) - 1; i >= 0; i-- {
		p, ok := inside(st.Created[i])
		if !ok {
			continue
		}
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		switch {
		case fi.IsDir():
			if entries, err := os.ReadDir(p); err != nil || len(entries) > 0 {
				continue
			}
		case !fi.Mode().IsRegular() || fi.Size() != 0:
			continue
		}
		_ = os.Remove(p)
	}
	for i, par := range st.Parents {
		p, ok := inside(par.Rel)
		if !ok || restore[i] == 0 {
			continue
		}
		ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(restore[i])}
		_ = unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	// overlayfs copied the stubs' parents up; one that is now empty and as
	// it is below was changed by nothing but the stubs, so it goes too
	// (BuildKit's overlay differ skips such dirs).
	for _, par := range st.Parents {
		for rel := par.Rel; rel != "." && rel != "" && !strings.HasPrefix(rel, ".."); rel = filepath.Dir(rel) {
			if !unchangedCopyUp(filepath.Join(upper, rel), lowers, rel) || os.Remove(filepath.Join(upper, rel)) != nil {
				break
			}
		}
	}
}

// unchangedCopyUp reports whether the upper dir p is empty, not opaque, and
// has the mode, owner and mtime of rel in the topmost lower that has it.
func unchangedCopyUp(p string, lowers []string, rel string) bool {
	var up unix.Stat_t
	if unix.Lstat(p, &up) != nil || up.Mode&unix.S_IFMT != unix.S_IFDIR {
		return false
	}
	if entries, err := os.ReadDir(p); err != nil || len(entries) > 0 {
		return false
	}
	if sz, _ := unix.Lgetxattr(p, "trusted.overlay.opaque", nil); sz > 0 {
		return false
	}
	for i := len(lowers) - 1; i >= 0; i-- {
		var lo unix.Stat_t
		if unix.Lstat(filepath.Join(lowers[i], rel), &lo) != nil {
			continue
		}
		return lo.Mode == up.Mode && lo.Uid == up.Uid && lo.Gid == up.Gid && lo.Mtim == up.Mtim
	}
	return false
}
