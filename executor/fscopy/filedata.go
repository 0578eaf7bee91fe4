//go:build linux

package fscopy

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

func (c *copier) copyFile(n *node, dst string, st *syscall.Stat_t, uid, gid int) error {
	// Plain fds, not *os.File: no poller registration or finalizer for
	// each of tens of thousands of files, and every step after the open
	// goes by fd rather than by path.
	in, err := unix.Open(n.abs, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening source %s: %w", n.rel, &os.PathError{Op: "open", Path: n.abs, Err: err})
	}
	defer unix.Close(in)
	out, err := unix.Open(dst, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("creating %s: %w", c.show(dst), &os.PathError{Op: "open", Path: dst, Err: err})
	}
	err = c.fill(out, in, n, dst, st, uid, gid)
	if cerr := unix.Close(out); err == nil && cerr != nil {
		err = fmt.Errorf("closing %s: %w", c.show(dst), cerr)
	}
	return err
}

// fill writes the new file out: data, owner, mode, xattrs, then times.
func (c *copier) fill(out, in int, n *node, dst string, st *syscall.Stat_t, uid, gid int) error {
	if err := copyData(out, in, n.fi.Size()); err != nil {
		return fmt.Errorf("copying %s: %w", n.rel, err)
	}
	// chown before chmod (it clears setuid) and xattrs (it clears
	// security.capability).
	var ost unix.Stat_t
	if err := unix.Fstat(out, &ost); err != nil {
		return fmt.Errorf("stat %s: %w", c.show(dst), err)
	}
	if uid != int(ost.Uid) || gid != int(ost.Gid) {
		if err := unix.Fchown(out, uid, gid); err != nil {
			return fmt.Errorf("chown %s: %w", c.show(dst), err)
		}
	}
	if err := unix.Fchmod(out, c.mode(st, false)); err != nil {
		return fmt.Errorf("chmod %s: %w", c.show(dst), err)
	}
	if err := copyXattrsFd(in, out); err != nil {
		return fmt.Errorf("copying xattrs of %s to %s: %w", n.abs, dst, err)
	}
	// Last: nothing after this may write data.
	ts := [2]unix.Timespec{{Sec: st.Atim.Sec, Nsec: st.Atim.Nsec}, {Sec: st.Mtim.Sec, Nsec: st.Mtim.Nsec}}
	if err := futimens(out, &ts); err != nil {
		return fmt.Errorf("setting times on %s: %w", dst, err)
	}
	return nil
}

// futimens sets the times of an open file (utimensat with a NULL path).
func futimens(fd int, ts *[2]unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// copyData copies in (a regular file of about size bytes) to out inside
// the kernel. copy_file_range refuses to copy from the build context into
// the overlay (different filesystems: EXDEV), and io.Copy then falls back
// to a user-space loop; sendfile copies between any two filesystems.
// Whatever the file grew by meanwhile is copied too.
func copyData(out, in int, size int64) error {
	for {
		n, err := unix.Sendfile(out, in, nil, int(min(max(size, 1<<16), 1<<30)))
		switch {
		case err == unix.EINTR || err == unix.EAGAIN:
			continue
		case err == unix.EINVAL || err == unix.ENOSYS:
			return copyLoop(out, in) // no sendfile between these two
		case err != nil:
			return err
		case n == 0:
			return nil
		}
		size -= int64(n)
	}
}

// copyLoop copies what is left of in to out through a buffer.
func copyLoop(out, in int) error {
	buf := make([]byte, 128<<10)
	for {
		n, err := unix.Read(in, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		for b := buf[:n]; len(b) > 0; {
			w, err := unix.Write(out, b)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return err
			}
			b = b[w:]
		}
	}
}
