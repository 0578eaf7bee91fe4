//go:build linux

package fscopy

import (
	"io/fs"
	"os"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// unix.Stat_t and syscall.Stat_t are both the kernel's struct stat; these
// fail to compile if their sizes ever differ.
var (
	_ [unsafe.Sizeof(unix.Stat_t{}) - unsafe.Sizeof(syscall.Stat_t{})]byte
	_ [unsafe.Sizeof(syscall.Stat_t{}) - unsafe.Sizeof(unix.Stat_t{})]byte
)

// statInfo is an os.FileInfo made from a stat(2) result, as os.Lstat
// would make it: the walk stats each entry relative to its open directory
// (fstatat) rather than by its full path, which the kernel would resolve
// component by component again for every one of tens of thousands of files.
type statInfo struct {
	name string
	st   syscall.Stat_t
}

func (s *statInfo) Name() string       { return s.name }
func (s *statInfo) Size() int64        { return s.st.Size }
func (s *statInfo) ModTime() time.Time { return time.Unix(s.st.Mtim.Unix()) }
func (s *statInfo) IsDir() bool        { return s.st.Mode&syscall.S_IFMT == syscall.S_IFDIR }
func (s *statInfo) Sys() any           { return &s.st }

// Mode converts as os does (os/stat_linux.go).
func (s *statInfo) Mode() fs.FileMode {
	m := fs.FileMode(s.st.Mode & 0o777)
	switch s.st.Mode & syscall.S_IFMT {
	case syscall.S_IFBLK:
		m |= fs.ModeDevice
	case syscall.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFDIR:
		m |= fs.ModeDir
	case syscall.S_IFIFO:
		m |= fs.ModeNamedPipe
	case syscall.S_IFLNK:
		m |= fs.ModeSymlink
	case syscall.S_IFSOCK:
		m |= fs.ModeSocket
	}
	if s.st.Mode&syscall.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if s.st.Mode&syscall.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if s.st.Mode&syscall.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// readDirStat lists dir sorted by name, each entry with its Lstat info.
func readDirStat(dir string) ([]*statInfo, error) {
	// Not os.Open: that also tries to register the fd with the poller.
	fd0, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	f := os.NewFile(uintptr(fd0), dir)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	fd := int(f.Fd())
	out := make([]*statInfo, len(names))
	errs := make([]error, len(names))
	stat := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			si := &statInfo{name: names[i]}
			var err error
			for {
				// The same kernel struct: see the size check above.
				err = unix.Fstatat(fd, si.name, (*unix.Stat_t)(unsafe.Pointer(&si.st)), unix.AT_SYMLINK_NOFOLLOW)
				if err != unix.EINTR {
					break
				}
			}
			out[i], errs[i] = si, err
		}
	}
	// A big directory is statted by a few goroutines at once: the calls
	// are independent, and this is most of a cached build's walk.
	if n := min(runtime.NumCPU(), len(names)/statChunk); n > 1 {
		var wg sync.WaitGroup
		per := (len(names) + n - 1) / n
		for lo := 0; lo < len(names); lo += per {
			wg.Add(1)
			go func() {
				defer wg.Done()
				stat(lo, min(lo+per, len(names)))
			}()
		}
		wg.Wait()
	} else {
		stat(0, len(names))
	}
	for i, err := range errs {
		if err != nil {
			return out[:i], &os.PathError{Op: "lstat", Path: dir + "/" + names[i], Err: err}
		}
	}
	return out, nil
}

// statChunk is the fewest entries worth a goroutine of their own.
const statChunk = 64
