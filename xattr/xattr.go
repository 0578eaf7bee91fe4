//go:build linux

package xattr

import (
	"errors"
	"strings"

	"golang.org/x/sys/unix"
)

// List is the names of p's xattrs (llistxattr).
func List(p string) ([]string, error) {
	for {
		n, err := unix.Llistxattr(p, nil)
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil || n == 0 {
			return nil, err
		}
		buf := make([]byte, n)
		n, err = unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			continue // grew meanwhile
		}
		if err != nil {
			return nil, err
		}
		return names(buf[:n]), nil
	}
}

// Get is the value of p's xattr name (lgetxattr).
func Get(p, name string) ([]byte, error) {
	return get(func(b []byte) (int, error) { return unix.Lgetxattr(p, name, b) })
}

// FList is List of an open file; one call for the usual few short names.
func FList(fd int) ([]string, error) {
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
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil || n == 0 {
			return nil, err
		}
		return names(buf[:n]), nil
	}
}

// FGet is Get of an open file.
func FGet(fd int, name string) ([]byte, error) {
	return get(func(b []byte) (int, error) { return unix.Fgetxattr(fd, name, b) })
}

func get(call func([]byte) (int, error)) ([]byte, error) {
	for {
		n, err := call(nil)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, n)
		n, err = call(buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

func names(b []byte) []string {
	var out []string
	for _, s := range strings.Split(string(b), "\x00") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
