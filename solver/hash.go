//go:build linux

package solver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/executor/fscopy"
	"github.com/kiln-build/kiln/solver/dag"
	"github.com/kiln-build/kiln/store"
	"github.com/kiln-build/kiln/xattr"
)

// HashSelection digests exactly what a copy with o reads from dir: each
// selected path with its type, mode, owner (0:0 for a copy from the
// context, see describe), link target, device number,
// extended attributes and data. Times are left out: they change nothing a
// step can see that its key should depend on.
func HashSelection(ctx context.Context, dir string, o fscopy.Options) (digest.Digest, error) {
	h := sha256.New()
	if err := hashSelection(ctx, h, dir, o, func() *store.StatCache { return nil }, nil); err != nil {
		return "", err
	}
	return digest.FromHash(h), nil
}

// localContent is the digest of everything v reads from a local directory
// (the build context): a COPY's selection, and the sources of RUN bind
// mounts of it. files, if not nil, gets each selected file's description,
// so a later build can say which file changed. "" when v reads none.
func (s *Solver) localContent(ctx context.Context, v *dag.Vertex, files map[string]string) (digest.Digest, error) {
	h := sha256.New()
	reads := false
	switch op := v.Op.(type) {
	case *dag.CopyOp:
		if len(v.Inputs) < 2 {
			return "", nil
		}
		local, ok := v.Inputs[1].Op.(*dag.LocalOp)
		if !ok {
			return "", nil
		}
		reads = true
		if err := hashSelection(ctx, h, local.Dir, copyOptions(op, local), s.statCache, files); err != nil {
			return "", err
		}
	case *dag.ExecOp:
		// A bind mount of the context shows the step those files: they
		// belong in its key as much as a COPY's do.
		for i, m := range op.Mounts {
			if m.Type != "bind" || m.Input < 0 || m.Input >= len(v.Inputs) {
				continue
			}
			local, ok := v.Inputs[m.Input].Op.(*dag.LocalOp)
			if !ok {
				continue
			}
			reads = true
			src := strings.TrimPrefix(filepath.Clean("/"+m.Source), "/")
			if src == "" {
				src = "."
			}
			fmt.Fprintf(h, "mount %d %q\n", i, m.Target)
			o := fscopy.Options{Sources: []string{src}, Dest: "/", Excludes: local.Excludes}
			if err := hashSelection(ctx, h, local.Dir, o, s.statCache, files); err != nil {
				return "", fmt.Errorf("bind mount %s: %w", m.Target, err)
			}
		}
	}
	if !reads {
		return "", nil
	}
	return digest.FromHash(h), nil
}

// hashSelection writes one line per selected entry of dir into h. File
// sums (with the file's xattrs) come from the stat cache when it can vouch
// for them (statCache may return nil): a change of data or xattrs always
// changes the ctime. The walk (stat calls) runs on this goroutine while
// another describes and hashes what it found, in the same order; the stat
// cache is loaded meanwhile.
func hashSelection(ctx context.Context, h io.Writer, dir string, o fscopy.Options, statCache func() *store.StatCache, files map[string]string) error {
	type item struct {
		rel string
		fi  os.FileInfo
	}
	const batchSize = 256
	batches := make(chan []item, 8)
	var failed atomic.Bool
	var herr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := statCache()
		var line []byte
		dir := filepath.Clean(dir)
		prefix := dir + "/"
		if dir == "/" {
			prefix = dir
		}
		for batch := range batches {
			if herr != nil {
				continue // drain
			}
			for _, it := range batch {
				p := prefix + it.rel // filepath.Join(dir, rel): rel is clean
				if it.rel == "." {
					p = dir
				}
				entry, err := describe(p, it.fi, sc, !o.ContextOwner)
				if err != nil {
					herr = fmt.Errorf("hashing %s: %w", p, err)
					failed.Store(true)
					break
				}
				// fmt.Fprintf(h, "%q %s\n", rel, entry), without fmt: this
				// runs for every file of the context on every build.
				line = append(strconv.AppendQuote(line[:0], it.rel), ' ')
				line = append(append(line, entry...), '\n')
				h.Write(line)
				if files != nil {
					files[it.rel] += entry
				}
			}
		}
	}()
	batch := make([]item, 0, batchSize)
	werr := fscopy.Walk(ctx, dir, o, func(rel string, fi os.FileInfo) error {
		if failed.Load() {
			return errStopWalk
		}
		if batch = append(batch, item{rel, fi}); len(batch) == batchSize {
			batches <- batch
			batch = make([]item, 0, batchSize)
		}
		return nil
	})
	if len(batch) > 0 {
		batches <- batch
	}
	close(batches)
	<-done
	if herr != nil {
		return herr
	}
	return werr
}

var errStopWalk = errors.New("stop walking")

// describe is one entry's line: "type mode uid:gid", then the link target,
// device number or size and data sum, then the xattrs' digest if any.
//
// owners false writes every owner as 0:0: a COPY from the context gives
// its files 0:0 (or --chown's owner) whoever owns them on disk, so the
// checkout's owner, which differs between CI machines, must not change
// the key. A bind mount of the context shows the owners, so they count.
func describe(p string, fi os.FileInfo, sc *store.StatCache, owners bool) (string, error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", errors.New("no stat data")
	}
	typ := "?"
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		typ = "f"
	case syscall.S_IFDIR:
		typ = "d"
	case syscall.S_IFLNK:
		typ = "l"
	case syscall.S_IFIFO:
		typ = "p"
	case syscall.S_IFSOCK:
		typ = "s"
	case syscall.S_IFCHR:
		typ = "c"
	case syscall.S_IFBLK:
		typ = "b"
	}
	// fmt.Sprintf("%s %04o %d:%d", ...), spelled out (see hashSelection).
	b := make([]byte, 0, 128)
	b = append(b, typ...)
	b = append(b, ' ')
	perm := strconv.FormatUint(uint64(st.Mode&^syscall.S_IFMT), 8)
	for i := len(perm); i < 4; i++ {
		b = append(b, '0')
	}
	b = append(b, perm...)
	if owners {
		b = append(strconv.AppendUint(append(b, ' '), uint64(st.Uid), 10), ':')
		b = strconv.AppendUint(b, uint64(st.Gid), 10)
	} else {
		b = append(b, " 0:0"...)
	}
	switch typ {
	case "l":
		t, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		b = strconv.AppendQuote(append(b, " -> "...), t)
	case "c", "b":
		b = strconv.AppendUint(append(b, ' '), uint64(unix.Major(st.Rdev)), 10)
		b = strconv.AppendUint(append(b, ','), uint64(unix.Minor(st.Rdev)), 10)
	case "f":
		sum := func() (string, error) { return fileSum(p) }
		var s string
		var err error
		if sc != nil {
			s, err = sc.Sum(p, fi, sum)
		} else {
			s, err = sum()
		}
		if err != nil {
			return "", err
		}
		b = strconv.AppendInt(append(b, ' '), fi.Size(), 10)
		return string(append(append(b, ' '), s...)), nil
	}
	entry := string(b)
	x, err := xattrDigest(p)
	if err != nil {
		return "", err
	}
	return entry + x, nil
}

// fileSum is the sha256 of a file's data, then " x:<digest>" of its
// xattrs when it has any (cached together: both change the ctime).
func fileSum(path string) (string, error) {
	// A plain fd and a pooled buffer: a big context's first build hashes
	// tens of thousands of files.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	h := sha256.New()
	bp := sumBufs.Get().(*[]byte)
	defer sumBufs.Put(bp)
	for {
		n, err := unix.Read(fd, *bp)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("hashing %s: %w", path, err)
		}
		if n == 0 {
			break
		}
		h.Write((*bp)[:n])
	}
	x, err := digestXattrs(func() ([]string, error) { return xattr.FList(fd) },
		func(name string) ([]byte, error) { return xattr.FGet(fd, name) })
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)) + x, nil
}

var sumBufs = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// xattrDigest is " x:<sha256>" of p's extended attributes (the ones a copy
// keeps: not SELinux labels or overlayfs' own), or "" if it has none.
func xattrDigest(p string) (string, error) {
	return digestXattrs(func() ([]string, error) { return xattr.List(p) },
		func(name string) ([]byte, error) { return xattr.Get(p, name) })
}

func digestXattrs(list func() ([]string, error), get func(string) ([]byte, error)) (string, error) {
	names, err := list()
	if err != nil {
		return "", err
	}
	var keep []string
	for _, n := range names {
		if n != "security.selinux" && !strings.HasPrefix(n, "trusted.overlay.") {
			keep = append(keep, n)
		}
	}
	if len(keep) == 0 {
		return "", nil
	}
	slices.Sort(keep)
	h := sha256.New()
	for _, n := range keep {
		v, err := get(n)
		if errors.Is(err, unix.ENODATA) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("reading xattr %s: %w", n, err)
		}
		fmt.Fprintf(h, "%q %q\n", n, v)
	}
	return " x:" + hex.EncodeToString(h.Sum(nil))[:32], nil
}
