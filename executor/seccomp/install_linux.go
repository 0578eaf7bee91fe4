package seccomp

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Install loads f with seccomp(SECCOMP_SET_MODE_FILTER) for the calling
// thread. The caller has locked its OS thread and will exec from it: the
// filter survives execve, which also ends every other thread. It does not set
// no_new_privs, so the thread needs CAP_SYS_ADMIN (runc does the same when
// NoNewPrivileges is false); install before dropping capabilities.
func (f *Filter) Install() error {
	if f == nil {
		return errors.New("seccomp: no filter")
	}
	if err := validate(f.Program); err != nil {
		return fmt.Errorf("seccomp: refusing filter: %w", err)
	}
	prog := unix.SockFprog{Len: uint16(len(f.Program)), Filter: &f.Program[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(f.Flags), uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(f.Program)
	switch {
	case errno == unix.EACCES:
		return fmt.Errorf("seccomp: loading filter: %w (needs CAP_SYS_ADMIN or no_new_privs)", errno)
	case errno != 0:
		return fmt.Errorf("seccomp: loading filter (flags %#x): %w", f.Flags, errno)
	}
	return nil
}
