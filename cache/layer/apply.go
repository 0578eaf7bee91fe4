package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// Apply extracts an uncompressed OCI or Docker layer tar from r into dir as
// a snapshot in overlay format, and returns how many bytes it read from r
// (the whole stream, so it matches the size behind the diffID).
//
// ".wh.<name>" becomes a character device 0/0 at name and ".wh..wh..opq"
// marks its directory opaque. Other entries keep their mode, owner, xattrs
// (except trusted.overlay.*, which only whiteouts may set) and mtime. A later
// entry for a path replaces an earlier one. No entry can create or change
// anything outside dir: names are resolved inside dir with symlinks scoped to
// it, names that climb out of dir with ".." are refused, and the last
// component of a name is never followed. Sparse entries are refused: layer
// writers do not make them and their declared size is unbounded.
func Apply(ctx context.Context, dir string, r io.Reader) (int64, error) {
	root, err := filepath.Abs(dir)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return 0, fmt.Errorf("applying layer to %s: %w", dir, err)
	}
	cr := &countingReader{ctx: ctx, r: r}
	a := &applier{root: root, dirTimes: map[string]time.Time{}}
	tr := tar.NewReader(cr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return cr.n, fmt.Errorf("applying layer to %s: reading tar: %w", dir, err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return cr.n, fmt.Errorf("applying layer to %s: entry %q: %w", dir, hdr.Name, err)
		}
	}
	if err := a.setDirTimes(); err != nil {
		return cr.n, fmt.Errorf("applying layer to %s: %w", dir, err)
	}
	// Read what follows the end-of-archive marker too, so the count is the
	// size of the whole stream.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return cr.n, fmt.Errorf("applying layer to %s: %w", dir, err)
	}
	return cr.n, nil
}

// countingReader counts bytes and stops when ctx is done.
type countingReader struct {
	ctx context.Context
	r   io.Reader
	n   int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type applier struct {
	root     string
	dirTimes map[string]time.Time // set at the end: creating children changes them
}

// cleanName turns a tar name into a slash path relative to the root, "" for
// the root itself. Absolute names are relative to the root, as in Docker;
// relative names that climb above the root are refused.
func cleanName(name string) (string, error) {
	if c := path.Clean(name); !path.IsAbs(name) && (c == ".." || strings.HasPrefix(c, "../")) {
		return "", errors.New("path escapes the layer root")
	}
	return strings.TrimPrefix(path.Clean("/"+name), "/"), nil
}

// resolveDir resolves the slash path rel inside the root, following symlinks
// only within the root, and creates what is missing of it.
func (a *applier) resolveDir(rel string) (string, error) {
	p, err := securejoin.SecureJoin(a.root, rel)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return "", err
	}
	return p, nil
}

func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	if isSparse(hdr) {
		return errors.New("sparse files are not supported in layers")
	}
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "" {
		return nil // the root's metadata belongs to the snapshot, not to a layer
	}
	dirName, base := path.Split(rel)
	parent, err := a.resolveDir(dirName)
	if err != nil {
		return err
	}
	switch {
	case base == opaqueMarker:
		if parent == a.root {
			return nil // the root is never merged with a lower one
		}
		return setXattr(parent, opaqueXattr, "y")
	case strings.HasPrefix(base, whiteoutPrefix+whiteoutPrefix):
		return nil // other AUFS metadata (.wh..wh.plnk, ...): meaningless here
	case strings.HasPrefix(base, whiteoutPrefix):
		name := base[len(whiteoutPrefix):]
		if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
			return errors.New("bad whiteout name")
		}
		target := filepath.Join(parent, name)
		if err := a.remove(target); err != nil {
			return err
		}
		if err := unix.Mknod(target, unix.S_IFCHR, 0); err != nil {
			return &os.PathError{Op: "mknod", Path: target, Err: err}
		}
		return nil
	}

	target := filepath.Join(parent, base)
	if fi, err := os.Lstat(target); err == nil {
		if !(fi.IsDir() && hdr.Typeflag == tar.TypeDir) {
			if err := a.remove(target); err != nil {
				return err
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return a.create(target, hdr, r)
}

// remove deletes target and everything under it, and forgets their times.
func (a *applier) remove(target string) error {
	if _, err := os.Lstat(target); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := os.RemoveAll(target); err != nil {
		return err
	}
	for p := range a.dirTimes {
		if p == target || strings.HasPrefix(p, target+"/") {
			delete(a.dirTimes, p)
		}
	}
	return nil
}

func (a *applier) create(target string, hdr *tar.Header, r io.Reader) error {
	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	case tar.TypeReg, tar.TypeRegA:
		// O_EXCL|O_NOFOLLOW: whatever was there is gone, so this can only
		// create a new file, never write through a link.
		f, err := openFile(target, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		bp := copyBufs.Get().(*[]byte)
		_, err = io.CopyBuffer(struct{ io.Writer }{f}, r, *bp) // the Writer only: no ReadFrom detour
		copyBufs.Put(bp)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", target, err)
		}
	case tar.TypeSymlink:
		if err := os.Symlink(hdr.Linkname, target); err != nil {
			return err
		}
	case tar.TypeLink:
		return a.link(target, hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknod(target, kind|mode&0o777, int(dev)); err != nil {
			return &os.PathError{Op: "mknod", Path: target, Err: err}
		}
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}

	if err := os.Lchown(target, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	// chmod after chown: chown clears the set-id bits. Never on a symlink.
	if hdr.Typeflag != tar.TypeSymlink {
		if err := unix.Fchmodat(unix.AT_FDCWD, target, mode, 0); err != nil {
			return &os.PathError{Op: "chmod", Path: target, Err: err}
		}
	}
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattr)
		if !ok || strings.HasPrefix(name, overlayXattrNS) {
			continue
		}
		if err := setXattr(target, name, v); err != nil {
			// user.* xattrs cannot go on symlinks or devices (EPERM), and the
			// file system may not support a namespace: skip those, like Docker.
			if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOTSUP) {
				continue
			}
			return err
		}
	}
	if hdr.Typeflag == tar.TypeDir {
		a.dirTimes[target] = hdr.ModTime
		return nil
	}
	return setTimes(target, hdr.ModTime)
}

// link makes target a hardlink to linkname, which must already be inside
// the root. The link shares its inode, so the metadata is the original's.
func (a *applier) link(target, linkname string) error {
	rel, err := cleanName(linkname)
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", linkname, err)
	}
	if rel == "" {
		return errors.New("hardlink to the layer root")
	}
	dirName, base := path.Split(rel)
	parent, err := securejoin.SecureJoin(a.root, dirName)
	if err != nil {
		return err
	}
	src := filepath.Join(parent, base)
	if src == target {
		return nil
	}
	if err := unix.Linkat(unix.AT_FDCWD, src, unix.AT_FDCWD, target, 0); err != nil {
		return &os.LinkError{Op: "link", Old: src, New: target, Err: err}
	}
	return nil
}

func (a *applier) setDirTimes() error {
	for p, mtime := range a.dirTimes {
		if fi, err := os.Lstat(p); err != nil || !fi.IsDir() {
			continue
		}
		if err := setTimes(p, mtime); err != nil {
			return err
		}
	}
	return nil
}

func setTimes(p string, mtime time.Time) error {
	// Not UnixNano: it is undefined outside 1678..2262.
	ts := unix.Timespec{Sec: mtime.Unix(), Nsec: int64(mtime.Nanosecond())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: p, Err: err}
	}
	return nil
}

func setXattr(p, name, value string) error {
	if err := unix.Lsetxattr(p, name, []byte(value), 0); err != nil {
		return &os.PathError{Op: "lsetxattr " + name, Path: p, Err: err}
	}
	return nil
}
