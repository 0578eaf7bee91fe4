//go:build linux

package fscopy

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/xattr"
)

// copyXattrs copies extended attributes except SELinux labels (the
// destination's policy decides those) and overlayfs' private ones.
func copyXattrs(src, dst string, symlink bool) error {
	names, err := xattr.List(src)
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
		val, err := xattr.Get(src, name)
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
	names, err := xattr.FList(src)
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
		val, err := xattr.FGet(src, name)
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
