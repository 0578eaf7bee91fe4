package fscopy

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// copyXattrs copies extended attributes except SELinux labels (the
// destination's policy decides those) and overlayfs' private ones.
func copyXattrs(src, dst string, symlink bool) error {
	names, err := listXattrs(src)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		return fmt.Errorf("listing xattrs of %s: %w", src, err)
	}
	for _, name := range names {
		if name == "security.selinux" || strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		val, err := getXattr(src, name)
		if err != nil {
			if errors.Is(err, unix.ENODATA) {
				continue
			}
			return fmt.Errorf("reading xattr %s of %s: %w", name, src, err)
		}
		if err := unix.Lsetxattr(dst, name, val, 0); err != nil {
			// Filesystems without xattrs, and user.* on symlinks, cannot
			// hold them; BuildKit ignores these too.
			if errors.Is(err, unix.ENOTSUP) || (symlink && errors.Is(err, unix.EPERM)) {
				continue
			}
			return fmt.Errorf("setting xattr %s on %s: %w", name, dst, err)
		}
	}
	return nil
}

// copyXattrsFd is copyXattrs between open files.
func copyXattrsFd(src, dst int) error {
	names, err := flistXattrs(src)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		return err
	}
	for _, name := range names {
		if name == "security.selinux" || strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		val, err := fgetXattr(src, name)
		if err != nil {
			if errors.Is(err, unix.ENODATA) {
				continue
			}
			return fmt.Errorf("reading xattr %s: %w", name, err)
		}
		if err := unix.Fsetxattr(dst, name, val, 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) {
				continue // BuildKit ignores these too
			}
			return fmt.Errorf("setting xattr %s: %w", name, err)
		}
	}
	return nil
}

func flistXattrs(fd int) ([]string, error) {
	var small [256]byte
	buf := small[:]
	for {
		n, err := unix.Flistxattr(fd, buf)
		if errors.Is(err, unix.ERANGE) {
			if n, err = unix.Flistxattr(fd, nil); err != nil {
				return nil, err
			}
			buf = make([]byte, n)
			continue
		}
		if err != nil || n == 0 {
			return nil, err
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

func fgetXattr(fd int, name string) ([]byte, error) {
	for {
		n, err := unix.Fgetxattr(fd, name, nil)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, n)
		n, err = unix.Fgetxattr(fd, name, buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

func listXattrs(p string) ([]string, error) {
	for {
		n, err := unix.Llistxattr(p, nil)
		if err != nil || n == 0 {
			return nil, err
		}
		buf := make([]byte, n)
		n, err = unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
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

func getXattr(p, name string) ([]byte, error) {
	for {
		n, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, n)
		n, err = unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}
