package fscopy

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"golang.org/x/sys/unix"
)

// openArchive opens p as a tar stream if it is one (plain, gzip, bzip2, xz
// or zstd, told by magic bytes and a valid first tar header, as docker
// does); ok is false for any other file.
func openArchive(p string) (io.ReadCloser, bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, false, err
	}
	br := bufio.NewReaderSize(f, 64<<10)
	magic, _ := br.Peek(6)
	var r io.Reader = br
	closeDec := func() {}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		gz, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, false, nil
		}
		r = gz
	case bytes.HasPrefix(magic, []byte("BZh")):
		r = bzip2.NewReader(br)
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		x, err := xz.NewReader(br)
		if err != nil {
			f.Close()
			return nil, false, nil
		}
		r = x
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		z, err := zstd.NewReader(br)
		if err != nil {
			f.Close()
			return nil, false, nil
		}
		r, closeDec = z, z.Close
	}
	head := make([]byte, 512)
	n, _ := io.ReadFull(r, head)
	head = head[:n]
	if _, err := tar.NewReader(bytes.NewReader(head)).Next(); err != nil || n < 512 {
		closeDec()
		f.Close()
		return nil, false, nil
	}
	return readCloser{io.MultiReader(bytes.NewReader(head), r), func() error { closeDec(); return f.Close() }}, true, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// extract unpacks a tar stream into dir like `tar -x` as root: modes,
// owners (or the --chown owner), mtimes, links; nothing lands outside dir.
func extract(ctx context.Context, r io.Reader, dir string, c *copier) error {
	tr := tar.NewReader(r)
	type dirTime struct {
		path string
		t    time.Time
	}
	var dirs []dirTime
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		name := path.Clean("/" + h.Name)
		if name == "/" {
			continue
		}
		target, err := securejoin.SecureJoin(dir, name)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		uid, gid := h.Uid, h.Gid
		if c.chown {
			uid, gid = int(c.uid), int(c.gid)
		}
		mode := uint32(h.Mode) & 0o7777
		if c.chmod != nil {
			mode = c.chmod(mode, h.Typeflag == tar.TypeDir)
		}
		if h.Typeflag != tar.TypeDir {
			if fi, err := os.Lstat(target); err == nil && !fi.IsDir() {
				if err := os.Remove(target); err != nil {
					return err
				}
			}
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			dirs = append(dirs, dirTime{target, h.ModTime})
		case tar.TypeReg, tar.TypeRegA:
			f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		case tar.TypeLink:
			old, err := securejoin.SecureJoin(dir, path.Clean("/"+h.Linkname))
			if err != nil {
				return err
			}
			if err := os.Link(old, target); err != nil {
				return err
			}
			continue
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[h.Typeflag]
			if err := unix.Mknod(target, kind|mode, int(unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor)))); err != nil {
				return err
			}
		default:
			continue // pax globals, sparse entries and the like carry no file
		}
		if err := os.Lchown(target, uid, gid); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeSymlink {
			ts := []unix.Timespec{unix.NsecToTimespec(h.ModTime.UnixNano()), unix.NsecToTimespec(h.ModTime.UnixNano())}
			unix.UtimesNanoAt(unix.AT_FDCWD, target, ts, unix.AT_SYMLINK_NOFOLLOW) //nolint:errcheck
			continue
		}
		// chmod after chown, which clears setuid bits.
		if err := os.Chmod(target, goMode(mode)); err != nil {
			return err
		}
		if h.Typeflag != tar.TypeDir {
			if err := os.Chtimes(target, h.ModTime, h.ModTime); err != nil {
				return err
			}
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chtimes(dirs[i].path, dirs[i].t, dirs[i].t); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("setting times of %s: %w", dirs[i].path, err)
		}
	}
	return nil
}
