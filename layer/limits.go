//go:build linux

package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/docker/go-units"
)

// Limits bound what extracting one archive (an ADD source or a pulled
// layer) may create. They are checked on each entry's header, before
// anything of the entry is written. The zero value means no size limit
// and the default path limits.
type Limits struct {
	// MaxBytes bounds the sizes the archive's regular files declare in
	// their headers, each and in all; sparse files count their full
	// (expanded) size. Every byte extraction writes is declared, so this
	// also bounds the output of a compressed archive. 0 means no limit.
	MaxBytes int64 `json:"maxBytes,omitempty"`
	// MaxBytesFrom names the setting MaxBytes comes from, for the error
	// that says it was exceeded; "" means DefaultMaxBytesFrom.
	MaxBytesFrom string `json:"maxBytesFrom,omitempty"`
	// MaxPathLen bounds the length in bytes of entry names and link
	// targets; 0 means DefaultMaxPathLen, less than 0 no limit.
	MaxPathLen int `json:"maxPathLen,omitempty"`
	// MaxDepth bounds how many levels deep an entry may be, counted
	// both in its name and once symlinks in its parents are followed;
	// 0 means DefaultMaxDepth, less than 0 no limit.
	MaxDepth int `json:"maxDepth,omitempty"`
}

const (
	// DefaultMaxPathLen is Linux's PATH_MAX: a longer name cannot be passed
	// to a system call whole, and tar(1), rm(1) and most programs fail on it.
	DefaultMaxPathLen = 4096
	// DefaultMaxDepth is far above real trees (deep node_modules or Java
	// package trees are tens of levels, rarely a hundred) and below the
	// 2048 levels a name of PATH_MAX bytes can hold, so that any path an
	// archive makes can still be named whole.
	DefaultMaxDepth = 1024
	// DefaultMaxBytesFrom is where MaxBytes comes from when Limits do not say.
	DefaultMaxBytesFrom = "build.maxArchiveSize in $KILN_ROOT/config.json"
)

// withDefaults fills in the zero fields that have a default.
func (l Limits) withDefaults() Limits {
	if l.MaxPathLen == 0 {
		l.MaxPathLen = DefaultMaxPathLen
	}
	if l.MaxDepth == 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxBytesFrom == "" {
		l.MaxBytesFrom = DefaultMaxBytesFrom
	}
	return l
}

// ErrLimit is what every LimitError matches with errors.Is.
var ErrLimit = errors.New("archive limit exceeded")

// LimitError says which entry of an archive went over which limit.
type LimitError struct {
	Entry string // the entry's name as the archive gives it
	What  string // "size", "total size", "name length", "link length", "depth" or "resolved depth"
	Value int64  // the entry's size, the running total, a length or a depth
	Max   int64
	From  string // the setting Max comes from (size limits only)
}

func (e *LimitError) Error() string {
	name := fmt.Sprintf("%q", shorten(e.Entry))
	switch e.What {
	case "size":
		return fmt.Sprintf("entry %s declares %s, more than the %s archive limit (%s)", name, formatSize(e.Value), formatSize(e.Max), e.From)
	case "total size":
		return fmt.Sprintf("entry %s brings what the archive declares to %s, more than the %s archive limit (%s)", name, formatSize(e.Value), formatSize(e.Max), e.From)
	case "name length":
		return fmt.Sprintf("entry %s has a name of %d bytes, more than the limit of %d (PATH_MAX)", name, e.Value, e.Max)
	case "link length":
		return fmt.Sprintf("entry %s has a link target of %d bytes, more than the limit of %d (PATH_MAX)", name, e.Value, e.Max)
	case "resolved depth":
		return fmt.Sprintf("entry %s is %d levels deep once the symlinks in its parents are followed, more than the limit of %d", name, e.Value, e.Max)
	}
	return fmt.Sprintf("entry %s is %d levels deep, more than the limit of %d", name, e.Value, e.Max)
}

func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// shorten keeps error messages readable when a name is thousands of bytes.
func shorten(s string) string {
	if len(s) <= 120 {
		return s
	}
	return s[:60] + "…" + s[len(s)-40:]
}

// formatSize writes n bytes in binary units ("20GiB", "1.5GiB"), with the
// exact count when they round it ("61.04MiB (64000000 bytes)"): a limit
// of free space is rarely a round number.
func formatSize(n int64) string {
	s := units.BytesSize(float64(n))
	if m, err := units.RAMInBytes(s); err == nil && m == n {
		return s
	}
	return fmt.Sprintf("%s (%d bytes)", s, n)
}

// Checker applies Limits to the headers of one archive, in order.
type Checker struct {
	l     Limits
	total int64
}

// NewChecker returns a Checker for one archive.
func NewChecker(l Limits) *Checker { return &Checker{l: l.withDefaults()} }

// Limits are the limits in force, defaults filled in.
func (c *Checker) Limits() Limits { return c.l }

// Check returns a *LimitError if hdr goes over a limit, and otherwise
// counts its declared size.
func (c *Checker) Check(hdr *tar.Header) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil // carries no file
	}
	if max := int64(c.l.MaxPathLen); max > 0 {
		if n := int64(len(hdr.Name)); n > max {
			return &LimitError{Entry: hdr.Name, What: "name length", Value: n, Max: max}
		}
		if n := int64(len(hdr.Linkname)); n > max {
			return &LimitError{Entry: hdr.Name, What: "link length", Value: n, Max: max}
		}
	}
	if max := int64(c.l.MaxDepth); max > 0 {
		if d := int64(Depth(hdr.Name)); d > max {
			return &LimitError{Entry: hdr.Name, What: "depth", Value: d, Max: max}
		}
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse: // the reader reports TypeRegA as TypeReg
	default:
		return nil // no data is written for other types, whatever their size
	}
	if c.l.MaxBytes <= 0 {
		return nil
	}
	if hdr.Size > c.l.MaxBytes {
		return &LimitError{Entry: hdr.Name, What: "size", Value: hdr.Size, Max: c.l.MaxBytes, From: c.l.MaxBytesFrom}
	}
	if hdr.Size > c.l.MaxBytes-c.total {
		return &LimitError{Entry: hdr.Name, What: "total size", Value: c.total + hdr.Size, Max: c.l.MaxBytes, From: c.l.MaxBytesFrom}
	}
	c.total += hdr.Size
	return nil
}

// Depth is the number of components of name once cleaned: "a/b/c" is 3.
func Depth(name string) int {
	c := path.Clean("/" + name)
	if c == "/" {
		return 0
	}
	return strings.Count(c, "/")
}

// ErrEscape is returned for an entry name that climbs out of the root.
var ErrEscape = errors.New(`name climbs out of the extraction root with ".."`)

// EntryName turns a tar entry name into a slash path relative to the
// extraction root, "" for the root itself. Absolute names are taken
// relative to the root, as Docker does; relative names that climb above
// the root with ".." are refused (kaniko's CVE-2026-28406 was such a name
// joined to the destination).
func EntryName(name string) (string, error) {
	if c := path.Clean(name); !path.IsAbs(name) && (c == ".." || strings.HasPrefix(c, "../")) {
		return "", ErrEscape
	}
	return strings.TrimPrefix(path.Clean("/"+name), "/"), nil
}
