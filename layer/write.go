//go:build linux

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
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/xattr"
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
//
// The stat, xattr and small-file reads run a few entries ahead on other
// goroutines (a snapshot can be tens of thousands of small files); the tar
// itself is written in order on this one.
func WriteTar(ctx context.Context, w io.Writer, dir string) error {
	_, err := WriteTarDU(ctx, w, dir)
	return err
}

// WriteTarDU is WriteTar that also returns the bytes the tree takes on
// disk, as du counts them (allocated blocks, a hard-linked inode once), so
// that whoever just made a snapshot need not walk it again to size it.
func WriteTarDU(ctx context.Context, w io.Writer, dir string) (int64, error) {
	du, err := tarTree(ctx, w, dir)
	if err != nil {
		return 0, err
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return 0, fmt.Errorf("writing layer tar of %s: %w", dir, err)
	}
	return du + st.Blocks*512, nil
}

func tarTree(ctx context.Context, w io.Writer, dir string) (int64, error) {
	dir, err := filepath.EvalSymlinks(dir) // walk the tree, not a link to it
	if err != nil {
		return 0, fmt.Errorf("writing layer tar: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	items := make(chan *entry, prefetchAhead)
	walkErr := make(chan error, 1)
	go func() { walkErr <- walkEntries(ctx, dir, items) }()
	tw := tar.NewWriter(w)
	seen := map[devIno]string{}
	var du int64
	for it := range items {
		<-it.done
		err := it.err
		if err == nil {
			_, counted := seen[devIno{uint64(it.st.Dev), it.st.Ino}]
			if err = it.emit(tw, seen); !counted {
				du += it.st.Blocks * 512
			}
		}
		if err != nil {
			cancel()
			for range items { // let the walk see the cancel and stop
			}
			<-walkErr
			return 0, fmt.Errorf("writing layer tar of %s: %w", dir, err)
		}
	}
	if err := <-walkErr; err != nil {
		return 0, fmt.Errorf("writing layer tar of %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return 0, fmt.Errorf("writing layer tar of %s: %w", dir, err)
	}
	return du, nil
}

// prefetchAhead is how many entries may be read ahead of the tar writer;
// prefetchMax is the largest file read ahead (bigger ones are streamed by
// the writer).
const (
	prefetchAhead = 128
	prefetchMax   = 128 << 10
	prefetchers   = 4
)

// entry is one path of the tree, read (by a prefetcher) ahead of its turn.
type entry struct {
	p, rel string
	done   chan struct{}

	st     unix.Stat_t
	target string // symlink
	xattrs map[string]string
	opaque bool
	data   []byte // a small regular file's content, read ahead
	err    error
}

// walkEntries sends dir's entries to items in walk order, each handed to a
// prefetcher first, and closes items.
func walkEntries(ctx context.Context, dir string, items chan<- *entry) error {
	defer close(items)
	work := make(chan *entry, prefetchAhead)
	defer close(work)
	for range prefetchers {
		go func() {
			for e := range work {
				e.err = e.read()
				close(e.done)
			}
		}()
	}
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		e := &entry{p: p, rel: filepath.ToSlash(rel), done: make(chan struct{})}
		select {
		case items <- e: // order first, then work: items never waits on work
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case work <- e:
		case <-ctx.Done():
			e.err = ctx.Err() // the writer may be waiting for it
			close(e.done)
			return ctx.Err()
		}
		return nil
	})
}

// read gathers what the tar needs of the entry.
func (e *entry) read() error {
	if err := unix.Lstat(e.p, &e.st); err != nil {
		return &os.PathError{Op: "lstat", Path: e.p, Err: err}
	}
	switch e.st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		if e.st.Rdev == 0 {
			return nil // a whiteout: its name is all there is
		}
	case unix.S_IFSOCK:
		return nil
	case unix.S_IFLNK:
		t, err := os.Readlink(e.p)
		if err != nil {
			return err
		}
		e.target = t
	}
	var err error
	if e.xattrs, e.opaque, err = readXattrs(e.p); err != nil {
		return err
	}
	if e.st.Mode&unix.S_IFMT == unix.S_IFREG && e.st.Size > 0 && e.st.Size <= prefetchMax {
		f, err := openFile(e.p, unix.O_RDONLY|unix.O_NOFOLLOW, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		e.data = make([]byte, e.st.Size)
		if _, err := io.ReadFull(f, e.data); err != nil {
			return fmt.Errorf("copying %s: %w", e.p, err)
		}
	}
	return nil
}

// emit writes the entry's headers and data.
func (e *entry) emit(tw *tar.Writer, seen map[devIno]string) error {
	st, p, rel := &e.st, e.p, e.rel
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
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = e.target
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
	if len(e.xattrs) > 0 && hdr.Typeflag != tar.TypeLink {
		hdr.PAXRecords = make(map[string]string, len(e.xattrs))
		for k, v := range e.xattrs {
			hdr.PAXRecords[paxXattr+k] = v
		}
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if hdr.Typeflag == tar.TypeDir && e.opaque {
		if err := tw.WriteHeader(&tar.Header{
			Name:     rel + "/" + opaqueMarker,
			Typeflag: tar.TypeReg,
			ModTime:  time.Unix(0, 0),
			Format:   tar.FormatPAX,
		}); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	if hdr.Typeflag != tar.TypeReg || hdr.Size == 0 {
		return nil
	}
	if e.data != nil {
		if _, err := tw.Write(e.data); err != nil {
			return fmt.Errorf("copying %s: %w", p, err)
		}
		return nil
	}
	return copyFile(tw, p, hdr.Size)
}

func copyFile(tw *tar.Writer, p string, size int64) error {
	f, err := openFile(p, unix.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	n, err := io.CopyBuffer(tw, io.LimitReader(f, size), *bp)
	if err == nil && n < size {
		err = io.ErrUnexpectedEOF // it shrank since its header was written
	}
	if err != nil {
		return fmt.Errorf("copying %s: %w", p, err)
	}
	return nil
}

// openFile is os.OpenFile without the poller: os.OpenFile tries to add
// every fd to it (three more syscalls), which a regular file never joins,
// and a layer can be tens of thousands of files.
func openFile(p string, flags int, mode uint32) (*os.File, error) {
	fd, err := unix.Open(p, flags|unix.O_CLOEXEC, mode)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// splitPath splits a slash path into "dir/" (or "") and its base.
func splitPath(rel string) (string, string) {
	i := strings.LastIndexByte(rel, '/')
	return rel[:i+1], rel[i+1:]
}

// readXattrs returns p's xattrs except trusted.overlay.*, and whether p is
// marked opaque.
func readXattrs(p string) (map[string]string, bool, error) {
	names, err := xattr.List(p)
	if err != nil {
		return nil, false, &os.PathError{Op: "llistxattr", Path: p, Err: err}
	}
	var out map[string]string
	opaque := false
	for _, name := range names {
		v, err := xattr.Get(p, name)
		if errors.Is(err, unix.ENODATA) {
			continue
		}
		if err != nil {
			return nil, false, &os.PathError{Op: "lgetxattr " + name, Path: p, Err: err}
		}
		val := string(v)
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
