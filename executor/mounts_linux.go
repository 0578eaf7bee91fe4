package executor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// extraMounts mounts ms under rootfs (before pivot_root) and returns the
// file mount points it had to create, relative to rootfs.
func extraMounts(rootfs string, ms []Mount) ([]string, error) {
	var created []string
	for _, m := range ms {
		target, err := securejoin.SecureJoin(rootfs, m.Target)
		if err != nil {
			return created, fmt.Errorf("mount target %s: %w", m.Target, err)
		}
		isFile := false
		if m.Type == "bind" {
			fi, err := os.Stat(m.Source)
			if err != nil {
				return created, fmt.Errorf("mount source for %s: %w", m.Target, err)
			}
			isFile = !fi.IsDir()
		}
		made, err := mountPoint(target, isFile)
		if err != nil {
			return created, fmt.Errorf("mount point %s: %w", m.Target, err)
		}
		if made {
			rel, _ := filepath.Rel(rootfs, target)
			created = append(created, rel)
		}
		if err := mountOne(m, target); err != nil {
			return created, fmt.Errorf("mounting %s on %s: %w", m.Type, m.Target, err)
		}
	}
	return created, nil
}

// mountPoint makes target exist as a dir or file; it reports whether it
// created a file (directories stay, as BuildKit leaves them).
func mountPoint(target string, file bool) (bool, error) {
	fi, err := os.Lstat(target)
	if err == nil {
		if fi.IsDir() == file {
			return false, fmt.Errorf("exists and is not a %s", map[bool]string{true: "file", false: "directory"}[file])
		}
		return false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if !file {
		return false, os.MkdirAll(target, 0o755)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return false, err
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return false, err
	}
	return true, f.Close()
}

func mountOne(m Mount, target string) error {
	switch m.Type {
	case "bind":
		if m.ReadOnly {
			return bindReadOnly(m.Source, target)
		}
		return unix.Mount(m.Source, target, "", unix.MS_BIND|unix.MS_REC, "")
	case "tmpfs":
		data := "mode=1777"
		if m.Size > 0 {
			data += fmt.Sprintf(",size=%d", m.Size)
		}
		return unix.Mount("tmpfs", target, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, data)
	case "overlay":
		o := overlay{Lowers: m.Lowers, Upper: m.Upper, Work: m.Work}
		if m.Subpath == "" || m.Subpath == "/" || m.Subpath == "." {
			return mountOverlay(target, o)
		}
		if err := mountOverlay(m.Staging, o); err != nil {
			return err
		}
		src, err := securejoin.SecureJoin(m.Staging, m.Subpath)
		if err != nil {
			return err
		}
		if m.ReadOnly || m.Upper == "" {
			return bindReadOnly(src, target)
		}
		return unix.Mount(src, target, "", unix.MS_BIND|unix.MS_REC, "")
	}
	return fmt.Errorf("unknown mount type %q", m.Type)
}

// removeStubs deletes from upper the empty files the child created only to
// mount something on them, so no stub of a secret reaches the layer.
func removeStubs(upper string, created []string) {
	for _, rel := range created {
		if rel == "" || strings.HasPrefix(rel, "..") {
			continue
		}
		p := filepath.Join(upper, rel)
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
			os.Remove(p)
		}
	}
}
