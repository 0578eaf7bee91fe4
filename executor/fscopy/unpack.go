//go:build linux

package fscopy

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/layer"
)

// maxDetect bounds how much of the decompressed stream openArchive reads
// before it decides: Go's tar reader takes PAX and GNU long-name or
// long-link headers of up to 1 MiB each before the first entry's own
// header.
const maxDetect = 3<<20 + 4<<10

// isArchive says whether p is an archive ADD extracts (see openArchive).
func isArchive(p string) bool {
	r, ok, err := openArchive(p)
	if err != nil || !ok {
		return false
	}
	r.Close()
	return true
}

// openArchive opens p as a tar stream if it is one (plain, gzip, bzip2, xz
// or zstd, told by magic bytes and a first tar entry that reads, PAX or GNU
// long-name headers included, as docker and BuildKit do); ok is false for
// any other file. Only a regular file is ever opened: never a FIFO or a
// device, whatever the context holds.
func openArchive(p string) (io.ReadCloser, bool, error) {
	if fi, err := os.Lstat(p); err != nil {
		return nil, false, err
	} else if !fi.Mode().IsRegular() {
		return nil, false, nil
	}
	// O_NONBLOCK|O_NOFOLLOW: should p have become a FIFO or a symlink
	// since, the open neither blocks nor follows; fstat then says so.
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false, &os.PathError{Op: "open", Path: p, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		_ = unix.Close(fd)
		if err != nil {
			return nil, false, &os.PathError{Op: "fstat", Path: p, Err: err}
		}
		return nil, false, nil
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		_ = unix.Close(fd)
		return nil, false, &os.PathError{Op: "fcntl", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(fd), p)
	dec, err := layer.DecompressArchive(f)
	if err != nil { // a bad compressed header: not an archive
		f.Close()
		return nil, false, nil
	}
	// Read the first header through a bounded tee, then replay what it
	// took in front of the rest of the stream.
	var head bytes.Buffer
	lr := &io.LimitedReader{R: dec, N: maxDetect}
	if _, err := tar.NewReader(io.TeeReader(lr, &head)).Next(); err != nil {
		dec.Close()
		f.Close()
		return nil, false, nil
	}
	return readCloser{io.MultiReader(&head, dec), func() error { dec.Close(); return f.Close() }}, true, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// extract unpacks a tar stream into dir like `tar -x` as root, with
// BuildKit's (moby's archive.Unpack) semantics: modes, owners (or the
// --chown owner), mtimes, links and device nodes are kept; an entry
// replaces what is at its name unless both are directories, which merge;
// the parents of a name are resolved inside dir with symlinks scoped to
// it, as in a chroot, and its last component is never followed; names that
// climb out with ".." are refused. Every header is checked against lim
// before its entry is written, so an archive that declares more than lim
// allows fails before it fills the disk.
func extract(ctx context.Context, r io.Reader, dir string, c *copier, lim layer.Limits) error {
	root, err := layer.OpenRoot(dir, lim)
	if err != nil {
		return err
	}
	defer root.Close()
	check := layer.NewChecker(lim)
	x := &extractor{ctx: ctx, root: root, c: c, buf: make([]byte, 256<<10)}
	dirTimes := map[string]time.Time{} // set at the end: creating children changes them
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the archive: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := check.Check(h); err != nil {
			return err
		}
		rel, err := layer.EntryName(h.Name)
		if err != nil {
			return fmt.Errorf("entry %q: %w", h.Name, err)
		}
		if rel == "" {
			continue
		}
		if err := x.entry(rel, h, tr); err != nil {
			if errors.Is(err, layer.ErrLimit) {
				return err // it names the entry
			}
			return fmt.Errorf("entry %q: %w", h.Name, err)
		}
		if h.Typeflag == tar.TypeDir {
			dirTimes[rel] = h.ModTime
		}
	}
	return root.SetDirTimes(dirTimes)
}

type extractor struct {
	ctx  context.Context
	root *layer.Root
	c    *copier
	buf  []byte
}

func (x *extractor) entry(rel string, h *tar.Header, r io.Reader) error {
	switch h.Typeflag {
	case tar.TypeDir, tar.TypeReg, tar.TypeGNUSparse, tar.TypeSymlink, tar.TypeLink,
		tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return nil // pax globals, volume labels and the like carry no file
	}
	p, err := x.root.Parent(rel)
	if err != nil {
		return err
	}
	defer p.Close()
	if h.Typeflag == tar.TypeLink {
		// The link shares its inode, so the metadata is the original's.
		return x.root.Link(p, h.Linkname)
	}
	isDir := h.Typeflag == tar.TypeDir
	kept, err := x.root.Clear(p, isDir)
	if err != nil {
		return err
	}
	uid, gid := h.Uid, h.Gid
	if x.c.chown {
		uid, gid = int(x.c.uid), int(x.c.gid)
	}
	mode := uint32(h.Mode) & 0o7777
	if x.c.chmod != nil {
		mode = x.c.chmod(mode, isDir)
	}
	fd := -1 // directories and regular files: metadata through it
	switch h.Typeflag {
	case tar.TypeDir:
		if !kept {
			if err := unix.Mkdirat(p.Fd, p.Base, 0o700); err != nil {
				return &os.PathError{Op: "mkdir", Path: p.Path(), Err: err}
			}
		}
		if fd, err = unix.Openat(p.Fd, p.Base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err != nil {
			return &os.PathError{Op: "open", Path: p.Path(), Err: err}
		}
		defer unix.Close(fd)
	case tar.TypeSymlink:
		if err := unix.Symlinkat(h.Linkname, p.Fd, p.Base); err != nil {
			return &os.PathError{Op: "symlink", Path: p.Path(), Err: err}
		}
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		// Device nodes stay data, as in BuildKit's images; other defences
		// keep steps from opening them.
		kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[h.Typeflag]
		dev := unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor))
		if err := unix.Mknodat(p.Fd, p.Base, kind|mode&0o777, int(dev)); err != nil {
			return &os.PathError{Op: "mknod", Path: p.Path(), Err: err}
		}
	default: // regular, sparse or not
		// O_EXCL|O_NOFOLLOW: whatever was there is gone, so this can only
		// create a new file, never write through a link.
		if fd, err = unix.Openat(p.Fd, p.Base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600); err != nil {
			return &os.PathError{Op: "open", Path: p.Path(), Err: err}
		}
		f := os.NewFile(uintptr(fd), p.Path())
		defer f.Close()
		if err := x.writeData(f, r, h.Size, layer.IsSparse(h)); err != nil {
			return fmt.Errorf("writing %s: %w", p.Path(), err)
		}
	}
	// chmod after chown, which clears setuid bits; never on a symlink.
	if err := p.Chown(fd, uid, gid); err != nil {
		return err
	}
	if h.Typeflag != tar.TypeSymlink {
		if err := p.Chmod(fd, mode); err != nil {
			return err
		}
	}
	if isDir {
		return nil // at the end, in SetDirTimes
	}
	return layer.SetTimes(p, h.ModTime)
}

// holeBlock is the granularity at which sparse entries' zeros become holes.
const holeBlock = 4 << 10

var zeros [holeBlock]byte

// writeData copies an entry's data (size bytes, which the header declared
// and the limits allowed) from r to f. For a sparse entry, whose holes the
// tar reader expands with zeros, blocks of zeros are skipped instead of
// written, so that the holes take no disk space.
func (x *extractor) writeData(f *os.File, r io.Reader, size int64, sparse bool) error {
	var off int64
	for {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		n, rerr := r.Read(x.buf)
		b := x.buf[:n]
		for len(b) > 0 {
			if !sparse {
				if _, err := f.WriteAt(b, off); err != nil {
					return err
				}
				off += int64(len(b))
				break
			}
			// Write the run of blocks that hold data, skip the run of
			// blocks that do not.
			data := 0
			for data < len(b) && !isZero(b[data:min(data+holeBlock, len(b))]) {
				data = min(data+holeBlock, len(b))
			}
			if data > 0 {
				if _, err := f.WriteAt(b[:data], off); err != nil {
					return err
				}
			}
			hole := data
			for hole < len(b) && isZero(b[hole:min(hole+holeBlock, len(b))]) {
				hole = min(hole+holeBlock, len(b))
			}
			off += int64(hole)
			b = b[hole:]
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if off != size {
		return fmt.Errorf("read %d bytes, the header declares %d", off, size)
	}
	if sparse {
		return f.Truncate(size) // it may end in a hole
	}
	return nil
}

func isZero(b []byte) bool { return bytes.Equal(b, zeros[:len(b)]) }
