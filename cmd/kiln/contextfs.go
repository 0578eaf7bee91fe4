//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// maxDockerfileSize bounds what kiln reads of a Dockerfile or a
// .dockerignore. BuildKit has the same bound in effect: its frontend reads
// the Dockerfile from the snapshot with a gateway ReadFile call whose reply
// is one gRPC message, and those stop at 16 MiB (containerd's
// defaults.DefaultMaxRecvMsgSize, which buildkitd and the frontend's
// client both use), .dockerignore likewise. So nothing that builds with
// BuildKit is refused here, and a crafted (sparse) file costs at most this
// much memory, not all of it.
const maxDockerfileSize = 16 << 20

// errNotInRoot is what readInRoot returns when the file is not there; a
// dangling symlink that stays inside the root is a danglingError, which
// is errNotInRoot too.
var errNotInRoot = errors.New("does not exist")

// rootedFile names a Dockerfile or .dockerignore to read: name (one path
// component) inside the directory root, with symlinks resolved within root
// as BuildKit does (fsutil's FollowLinks takes an absolute target as
// relative to the synced directory, and the frontend then reads the file
// with continuity's fs.RootPath), never out of it.
type rootedFile struct {
	root  string // the directory it is resolved in
	name  string // base name inside root
	label string // how errors name it, followed by what it points to: "Dockerfile", "-f /x/app.Dockerfile"
	full  string // how errors name it alone: "/ctx/Dockerfile", "-f /x/app.Dockerfile"
	where string // the root, for errors: "the build context /ctx"
	hint  string // what to do about a link that leads out
}

// contextFile is the file name directly in the build context.
func contextFile(contextDir, name, hint string) rootedFile {
	return rootedFile{root: contextDir, name: name, label: name, full: filepath.Join(contextDir, name),
		where: "the build context " + contextDir, hint: hint}
}

// flagFile is a file the user named with -f (or the one beside it): it may
// be anywhere, but its symlinks are followed only within its directory,
// as BuildKit follows them in the local it syncs that directory as.
func flagFile(path, label, where, hint string) rootedFile {
	path = filepath.Clean(path)
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	dir := filepath.Dir(path)
	return rootedFile{root: dir, name: filepath.Base(path), label: label, full: label,
		where: where + " " + dir, hint: hint}
}

// readInRoot reads f. It refuses, before reading a byte: a symlink that
// leads out of f.root, anything but a regular file (a FIFO would block the
// open, a device like /dev/zero never ends), and a file over
// maxDockerfileSize. The file is opened as an O_PATH handle resolved in
// the root (openat2 RESOLVE_IN_ROOT, or pathrs-lite's emulation of it on
// older kernels), its type checked on that handle, and only a regular file
// is reopened for reading: there is no window between check and open.
// Nothing of the file's content is ever part of an error.
func readInRoot(f rootedFile) ([]byte, error) {
	root, err := os.OpenFile(f.root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			return nil, errNotInRoot
		}
		return nil, fmt.Errorf("%s: %w", f.full, err)
	}
	defer root.Close()

	h, err := pathrs.OpenatInRoot(root, f.name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			if lerr := f.linkError(root); lerr != nil {
				return nil, lerr
			}
			return nil, errNotInRoot
		}
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("%s: too many levels of symbolic links", f.full)
		}
		return nil, fmt.Errorf("opening %s: %w", f.full, err)
	}
	defer h.Close()
	fi, err := h.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.full, err)
	}
	if err := f.checkFile(fi); err != nil {
		return nil, err
	}
	// O_NONBLOCK and O_NOCTTY are no-ops for the regular file this is;
	// they keep the open harmless should it ever be anything else.
	rf, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", f.full, err)
	}
	defer rf.Close()
	if fi, err = rf.Stat(); err != nil {
		return nil, fmt.Errorf("%s: %w", f.full, err)
	}
	if err := f.checkFile(fi); err != nil {
		return nil, err
	}
	// The file may grow after the stat: read one byte past the limit to
	// see that it did.
	b, err := io.ReadAll(io.LimitReader(rf, maxDockerfileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", f.full, err)
	}
	if len(b) > maxDockerfileSize {
		return nil, fmt.Errorf("%s: grew past the limit of %d MiB (%d bytes) for a Dockerfile or .dockerignore while being read",
			f.full, maxDockerfileSize>>20, maxDockerfileSize)
	}
	return b, nil
}

// checkFile refuses what is not a regular file of at most the limit.
func (f rootedFile) checkFile(fi os.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file (%s)", f.full, fileKind(fi.Mode()))
	}
	if fi.Size() > maxDockerfileSize {
		return f.tooBig(fi.Size())
	}
	return nil
}

func (f rootedFile) tooBig(size int64) error {
	return fmt.Errorf("%s is %d bytes, over the limit of %d MiB (%d bytes) for a Dockerfile or .dockerignore (BuildKit's too)",
		f.full, size, maxDockerfileSize>>20, maxDockerfileSize)
}

// linkError explains, when f is missing in its root, a symlink there that
// points out of the root (or to nothing): nil when f is not a symlink. It
// looks only at the links' names and targets, never at a target's data.
func (f rootedFile) linkError(root *os.File) error {
	raw, err := readlinkat(root, f.name)
	if err != nil {
		return nil // not a symlink (or gone): plainly missing
	}
	target := showPath(raw)
	// Where the link leads on the host, for the message: EvalSymlinks
	// only lstats and reads links. The root is compared as named and as
	// resolved (the context may be given through a symlink).
	realRoot := f.root
	if r, err := filepath.EvalSymlinks(f.root); err == nil {
		realRoot = r
	}
	in := func(p string) bool { return within(f.root, p) || within(realRoot, p) }
	leads, everr := filepath.EvalSymlinks(filepath.Join(f.root, f.name))
	lexical := raw
	if !filepath.IsAbs(lexical) {
		lexical = filepath.Join(f.root, lexical)
	}
	lexical = filepath.Clean(lexical)
	via := ""
	if everr == nil && leads != lexical {
		via = " (which leads to " + showPath(leads) + ")"
	}
	switch {
	case !in(lexical) || everr == nil && !in(leads):
		return fmt.Errorf("%s is a symlink to %s%s, outside %s: %s",
			f.label, target, via, f.where, f.hint)
	case climbs(raw):
		// "../ctx/Dockerfile" from ctx: back inside on the host, but
		// resolved in the root, as BuildKit does, ".." stops at it.
		return fmt.Errorf("%s is a symlink to %s, which climbs out of %s (symlinks are resolved within it, as BuildKit does): make the link relative to its own directory, or %s",
			f.label, target, f.where, f.hint)
	case filepath.IsAbs(raw):
		return fmt.Errorf("%s is a symlink to %s, an absolute path, which is taken inside %s (as BuildKit does), and is not there: make the link relative",
			f.label, target, f.where)
	}
	err = fmt.Errorf("%s is a symlink to %s%s, which is not in %s", f.label, target, via, f.where)
	if everr != nil {
		// Dangling inside the root and on the host alike: as missing
		// as no file (a .dockerignore link like it is skipped, as
		// BuildKit skips it), with this to say why.
		return danglingError{err}
	}
	return err
}

// danglingError is a symlink that leads nowhere, inside the root: it is
// errNotInRoot, explained.
type danglingError struct{ error }

func (danglingError) Is(target error) bool { return target == errNotInRoot }

// within reports whether p (clean, absolute) is root or below it.
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// climbs reports whether a relative link target goes above the directory
// it is in at some point ("../ctx/Dockerfile" from ctx): resolved inside
// the root, as BuildKit resolves it, the ".." stops at the root.
func climbs(target string) bool {
	if filepath.IsAbs(target) {
		return false
	}
	depth := 0
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}

func readlinkat(dir *os.File, name string) (string, error) {
	for n := 256; n <= 1<<16; n *= 2 {
		buf := make([]byte, n)
		l, err := unix.Readlinkat(int(dir.Fd()), name, buf)
		if err != nil {
			return "", err
		}
		if l < n {
			return string(buf[:l]), nil
		}
	}
	return "", unix.ENAMETOOLONG
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	}
	return "irregular file"
}

// showPath is a link target as an error shows it: quoted when it holds
// anything but printable characters, so that a crafted link cannot write
// terminal escapes or fake lines into kiln's output.
func showPath(p string) string {
	for _, r := range p {
		if !unicode.IsPrint(r) {
			return strconv.Quote(p)
		}
	}
	return p
}
