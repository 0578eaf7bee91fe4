package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
	opaqueXattr    = "trusted.overlay.opaque"
	overlayXattrNS = "trusted.overlay."
	paxXattr       = "SCHILY.xattr."
)

type devIno struct{ dev, ino uint64 }

// WriteTar streams dir as an OCI layer tar to w. Entries come in lexical
// walk order (a directory before its children) in PAX format, with only the
// metadata Lstat gives (no atime, ctime, user or group names), so the same
// tree always gives the same bytes. Overlay whiteouts and opaque directories
// become ".wh." entries, hardlinks inside dir become TypeLink entries,
// xattrs other than trusted.overlay.* are kept and sockets are skipped.
func WriteTar(ctx context.Context, w io.Writer, dir string) error {
	dir, err := filepath.EvalSymlinks(dir) // walk the tree, not a link to it
	if err != nil {
		return fmt.Errorf("writing layer tar: %w", err)
	}
	tw := tar.NewWriter(w)
	seen := map[devIno]string{}
	err = filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		return writeEntry(tw, p, filepath.ToSlash(rel), seen)
	})
	if err != nil {
		return fmt.Errorf("writing layer tar of %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing layer tar of %s: %w", dir, err)
	}
	return nil
}

func writeEntry(tw *tar.Writer, p, rel string, seen map[devIno]string) error {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: p, Err: err}
	}
	hdr := &tar.Header{
		Name:    rel,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()),
		Format:  tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		if st.Rdev == 0 {
			// An overlay whiteout. Overlay may hardlink all whiteouts to one
			// inode, so this check comes before the hardlink one. The time is
			// fixed because when a file was deleted is not content.
			dirName, base := splitPath(rel)
			return tw.WriteHeader(&tar.Header{
				Name:     dirName + whiteoutPrefix + base,
				Typeflag: tar.TypeReg,
				ModTime:  time.Unix(0, 0),
				Format:   tar.FormatPAX,
			})
		}
		hdr.Typeflag = tar.TypeChar
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFBLK:
		hdr.Typeflag = tar.TypeBlock
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	case unix.S_IFSOCK:
		return nil // a socket cannot be stored in a layer
	case unix.S_IFLNK:
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = target
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = st.Size
	default:
		return fmt.Errorf("%s: unknown file type %#o", p, st.Mode&unix.S_IFMT)
	}
	if hdr.Typeflag != tar.TypeDir && st.Nlink > 1 {
		id := devIno{uint64(st.Dev), st.Ino}
		if first, ok := seen[id]; ok {
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = first
			hdr.Size = 0
		} else {
			seen[id] = rel
		}
	}

	xattrs, opaque, err := readXattrs(p)
	if err != nil {
		return err
	}
	if len(xattrs) > 0 && hdr.Typeflag != tar.TypeLink {
		hdr.PAXRecords = make(map[string]string, len(xattrs))
		for k, v := range xattrs {
			hdr.PAXRecords[paxXattr+k] = v
		}
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if hdr.Typeflag == tar.TypeDir && opaque {
		if err := tw.WriteHeader(&tar.Header{
			Name:     rel + "/" + opaqueMarker,
			Typeflag: tar.TypeReg,
			ModTime:  time.Unix(0, 0),
			Format:   tar.FormatPAX,
		}); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
		return copyFile(tw, p, hdr.Size)
	}
	return nil
}

func copyFile(tw *tar.Writer, p string, size int64) error {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyN(tw, f, size); err != nil {
		return fmt.Errorf("copying %s: %w", p, err)
	}
	return nil
}

// splitPath splits a slash path into "dir/" (or "") and its base.
func splitPath(rel string) (string, string) {
	i := strings.LastIndexByte(rel, '/')
	return rel[:i+1], rel[i+1:]
}

// readXattrs returns p's xattrs except trusted.overlay.*, and whether p is
// marked opaque.
func readXattrs(p string) (map[string]string, bool, error) {
	names, err := listXattrs(p)
	if err != nil {
		return nil, false, err
	}
	var out map[string]string
	opaque := false
	for _, name := range names {
		val, err := getXattr(p, name)
		if errors.Is(err, unix.ENODATA) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		if name == opaqueXattr {
			opaque = val == "y"
			continue
		}
		if strings.HasPrefix(name, overlayXattrNS) {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = val
	}
	return out, opaque, nil
}

func listXattrs(p string) ([]string, error) {
	for {
		n, err := unix.Llistxattr(p, nil)
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, &os.PathError{Op: "llistxattr", Path: p, Err: err}
		}
		if n == 0 {
			return nil, nil
		}
		buf := make([]byte, n)
		n, err = unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			continue // grew in between
		}
		if err != nil {
			return nil, &os.PathError{Op: "llistxattr", Path: p, Err: err}
		}
		var names []string
		for _, s := range strings.Split(string(buf[:n]), "\x00") {
			if s != "" {
				names = append(names, s)
			}
		}
		return names, nil
	}
}

func getXattr(p, name string) (string, error) {
	for {
		n, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return "", &os.PathError{Op: "lgetxattr " + name, Path: p, Err: err}
		}
		buf := make([]byte, n)
		n, err = unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return "", &os.PathError{Op: "lgetxattr " + name, Path: p, Err: err}
		}
		return string(buf[:n]), nil
	}
}
