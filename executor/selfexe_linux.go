package executor

import (
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// The executor child is kiln's own binary re-executed. Until it execs the
// user's program, /proc/<pid>/exe inside the container points at that
// binary, and a program that is run through it (an image whose entrypoint
// is a `#!/proc/self/exe` script) keeps it: a process in the container
// could then open the host's kiln binary for writing (runc's
// CVE-2019-5736). So the child is started from a copy it cannot write: a
// read-only, detached bind mount of the binary (no copy, as runc 1.2 does
// with its overlay), or else a sealed memfd copy (runc's first fix).
var selfExe = sync.OnceValues(func() (string, error) {
	if p, err := readOnlyExe(); err == nil {
		return p, nil
	}
	return sealedExe()
})

// readOnlyExe opens the running binary through a private read-only bind
// mount and returns a /proc/self/fd path to exec it by. The fd stays open
// for the life of the process (it is close-on-exec).
func readOnlyExe() (string, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, "/proc/self/exe", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return "", fmt.Errorf("open_tree of the kiln binary: %w", err)
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOSUID}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
		unix.Close(fd)
		return "", fmt.Errorf("making the kiln binary's mount read-only: %w", err)
	}
	return fmt.Sprintf("/proc/self/fd/%d", fd), nil
}

// sealedExe copies the running binary into a memfd sealed against writes.
// The fd is a raw one, never closed: the path returned refers to it.
func sealedExe() (string, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return "", fmt.Errorf("opening the kiln binary: %w", err)
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("kiln-executor", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return "", fmt.Errorf("memfd for the kiln binary: %w", err)
	}
	if _, err := io.Copy(fdWriter(fd), src); err != nil {
		unix.Close(fd)
		return "", fmt.Errorf("copying the kiln binary: %w", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		unix.Close(fd)
		return "", fmt.Errorf("sealing the copy of the kiln binary: %w", err)
	}
	return fmt.Sprintf("/proc/self/fd/%d", fd), nil
}

// fdWriter writes to a raw fd (an *os.File would close it when collected).
type fdWriter int

func (w fdWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Write(int(w), p[n:])
		if err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}
