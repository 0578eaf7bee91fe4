//go:build linux

package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/ctxio"
)

// ApplyOptions say how Apply works on one layer.
type ApplyOptions struct {
	// Limits bound what the layer may create (see Limits for the defaults).
	Limits Limits
	// Name says which layer this is in errors ("layer sha256:…"); "" is
	// "layer".
	Name string
}

// Apply is ApplyWith with the default limits: no size limit.
func Apply(ctx context.Context, dir string, r io.Reader) (int64, error) {
	return ApplyWith(ctx, dir, r, ApplyOptions{})
}

// ApplyWith extracts an uncompressed OCI or Docker layer tar from r into
// dir as a snapshot in overlay format, and returns how many bytes it read
// from r (the whole stream, so it matches the size behind the diffID).
//
// ".wh.<name>" becomes a character device 0/0 at name and ".wh..wh..opq"
// marks its directory opaque. Other entries keep their mode, owner, xattrs
// (except trusted.overlay.*, which only whiteouts may set) and mtime. A later
// entry for a path replaces an earlier one (unless both are directories,
// which merge). No entry can create or change anything outside dir: names
// are resolved inside dir with symlinks scoped to it, names that climb out
// of dir with ".." are refused, and the last component of a name is never
// followed. Sparse entries are refused: layer writers do not make them.
// An entry over o.Limits fails the whole layer before it is written.
func ApplyWith(ctx context.Context, dir string, r io.Reader, o ApplyOptions) (int64, error) {
	name := o.Name
	if name == "" {
		name = "layer"
	}
	what := fmt.Sprintf("applying %s to %s", name, dir)
	root, err := filepath.Abs(dir)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	rt, err := OpenRoot(root, o.Limits)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	defer rt.Close()
	cr := ctxio.NewReader(ctx, r)
	a := &applier{root: rt, dirTimes: map[string]time.Time{}}
	check := NewChecker(o.Limits)
	tr := tar.NewReader(cr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return cr.N, fmt.Errorf("%s: reading tar: %w", what, err)
		}
		if err := check.Check(hdr); err != nil {
			return cr.N, fmt.Errorf("%s: %w", what, err)
		}
		if err := a.entry(hdr, tr); err != nil {
			if errors.Is(err, ErrLimit) {
				return cr.N, fmt.Errorf("%s: %w", what, err) // it names the entry
			}
			return cr.N, fmt.Errorf("%s: entry %q: %w", what, hdr.Name, err)
		}
	}
	if err := rt.SetDirTimes(a.dirTimes); err != nil {
		return cr.N, fmt.Errorf("%s: %w", what, err)
	}
	// Read what follows the end-of-archive marker too, so the count is the
	// size of the whole stream.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return cr.N, fmt.Errorf("%s: %w", what, err)
	}
	return cr.N, nil
}

type applier struct {
	root     *Root
	dirTimes map[string]time.Time // set at the end: creating children changes them
}

// IsSparse reports whether hdr is a sparse file (old GNU 'S' or PAX
// GNU.sparse.* records), whose data the tar reader expands with zeros.
func IsSparse(hdr *tar.Header) bool {
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
	if IsSparse(hdr) {
		return errors.New("sparse files are not supported in layers")
	}
	rel, err := EntryName(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "" {
		return nil // the root's metadata belongs to the snapshot, not to a layer
	}
	p, err := a.root.Parent(rel)
	if err != nil {
		return err
	}
	defer p.Close()
	switch base := p.Base; {
	case base == opaqueMarker:
		if p.Rel == "" {
			return nil // the root is never merged with a lower one
		}
		return fsetxattr(p.Fd, filepath.Dir(p.Path()), opaqueXattr, "y")
	case strings.HasPrefix(base, whiteoutPrefix+whiteoutPrefix):
		return nil // other AUFS metadata (.wh..wh.plnk, ...): meaningless here
	case strings.HasPrefix(base, whiteoutPrefix):
		name := base[len(whiteoutPrefix):]
		if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
			return errors.New("bad whiteout name")
		}
		w := p
		w.Base = name
		if _, err := a.root.Clear(w, false); err != nil {
			return err
		}
		if err := unix.Mknodat(p.Fd, name, unix.S_IFCHR, 0); err != nil {
			return &os.PathError{Op: "mknod", Path: w.Path(), Err: err}
		}
		return nil
	}
	if hdr.Typeflag == tar.TypeLink {
		// The link shares its inode, so the metadata is the original's.
		return a.root.Link(p, hdr.Linkname)
	}
	kept, err := a.root.Clear(p, hdr.Typeflag == tar.TypeDir)
	if err != nil {
		return err
	}
	if err := a.create(p, kept, hdr, r); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeDir {
		a.dirTimes[rel] = hdr.ModTime
	}
	return nil
}

// create makes the entry at p, which Clear emptied (or kept, a directory).
func (a *applier) create(p Parent, kept bool, hdr *tar.Header, r io.Reader) error {
	mode := uint32(hdr.Mode & 0o7777)
	fd := -1 // directories and regular files: metadata through it
	switch hdr.Typeflag {
	case tar.TypeDir:
		if !kept {
			if err := unix.Mkdirat(p.Fd, p.Base, 0o700); err != nil {
				return &os.PathError{Op: "mkdir", Path: p.Path(), Err: err}
			}
		}
		var err error
		if fd, err = unix.Openat(p.Fd, p.Base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err != nil {
			return &os.PathError{Op: "open", Path: p.Path(), Err: err}
		}
		defer unix.Close(fd)
	case tar.TypeReg: // the reader reports TypeRegA as TypeReg
		// O_EXCL|O_NOFOLLOW: whatever was there is gone, so this can only
		// create a new file, never write through a link.
		var err error
		if fd, err = unix.Openat(p.Fd, p.Base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600); err != nil {
			return &os.PathError{Op: "open", Path: p.Path(), Err: err}
		}
		f := os.NewFile(uintptr(fd), p.Path()) // not os.OpenFile: no poller (see openFile)
		defer f.Close()
		bp := copyBufs.Get().(*[]byte)
		_, err = io.CopyBuffer(struct{ io.Writer }{f}, r, *bp) // the Writer only: no ReadFrom detour
		copyBufs.Put(bp)
		if err != nil {
			return fmt.Errorf("writing %s: %w", p.Path(), err)
		}
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, p.Fd, p.Base); err != nil {
			return &os.PathError{Op: "symlink", Path: p.Path(), Err: err}
		}
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(p.Fd, p.Base, kind|mode&0o777, int(dev)); err != nil {
			return &os.PathError{Op: "mknod", Path: p.Path(), Err: err}
		}
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}

	// Owner, then mode (chown clears the set-id bits; never on a symlink),
	// then xattrs (chown clears security.capability), then times.
	if err := p.Chown(fd, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeSymlink {
		if err := p.Chmod(fd, mode); err != nil {
			return err
		}
	}
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattr)
		if !ok || strings.HasPrefix(name, overlayXattrNS) {
			continue
		}
		var err error
		if fd >= 0 {
			err = fsetxattr(fd, p.Path(), name, v)
		} else {
			err = setXattr(p.Path(), name, v) // its parents hold no symlinks
		}
		if err != nil {
			// user.* xattrs cannot go on symlinks or devices (EPERM), and the
			// file system may not support a namespace: skip those, like Docker.
			if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOTSUP) {
				continue
			}
			return err
		}
	}
	if hdr.Typeflag == tar.TypeDir {
		return nil // at the end, in SetDirTimes
	}
	return SetTimes(p, hdr.ModTime)
}

func setXattr(p, name, value string) error {
	if err := unix.Lsetxattr(p, name, []byte(value), 0); err != nil {
		return &os.PathError{Op: "lsetxattr " + name, Path: p, Err: err}
	}
	return nil
}

func fsetxattr(fd int, p, name, value string) error {
	if err := unix.Fsetxattr(fd, name, []byte(value), 0); err != nil {
		return &os.PathError{Op: "setxattr " + name, Path: p, Err: err}
	}
	return nil
}
