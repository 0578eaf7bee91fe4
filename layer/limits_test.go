//go:build linux

package layer

import (
	"archive/tar"
	"errors"
	"strings"
	"testing"
)

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{
		20 << 30: "20GiB", 64 << 20: "64MiB", 1 << 40: "1TiB", 3 << 29: "1.5GiB", 1536: "1.5KiB", 100: "100B", 0: "0B",
		64000000: "61.04MiB (64000000 bytes)", 1<<30 + 1: "1GiB (1073741825 bytes)",
	} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestChecker(t *testing.T) {
	reg := func(name string, size int64) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeReg, Size: size}
	}
	c := NewChecker(Limits{MaxBytes: 100, MaxBytesFrom: "the test"})
	for _, h := range []*tar.Header{reg("a", 60), {Name: "d/", Typeflag: tar.TypeDir, Size: 1 << 40},
		{Name: "l", Typeflag: tar.TypeSymlink, Size: 1 << 40}, reg("b", 40)} {
		if err := c.Check(h); err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
	}
	err := c.Check(reg("c", 1))
	if !errors.Is(err, ErrLimit) || err.Error() != `entry "c" brings what the archive declares to 101B, more than the 100B archive limit (the test)` {
		t.Errorf("over the total: %v", err)
	}
	if l := NewChecker(Limits{}).Limits(); l.MaxBytes != 0 || l.MaxPathLen != DefaultMaxPathLen || l.MaxDepth != DefaultMaxDepth || l.MaxBytesFrom != DefaultMaxBytesFrom {
		t.Errorf("defaults: %+v", l)
	}
	// Below zero: no limit, for callers that copy trees they made.
	c = NewChecker(Limits{MaxPathLen: -1, MaxDepth: -1})
	if err := c.Check(reg(strings.Repeat("a/", 5000)+"f", 1<<50)); err != nil {
		t.Errorf("no limits: %v", err)
	}
	if err := NewChecker(Limits{}).Check(reg(strings.Repeat("a/", 1025), 0)); err == nil || !strings.Contains(err.Error(), "1025 levels deep") {
		t.Errorf("default depth: %v", err)
	}
	long := (&LimitError{Entry: strings.Repeat("x", 5000), What: "name length", Value: 5000, Max: 4096}).Error()
	if len(long) > 300 {
		t.Errorf("the message of a long name is %d bytes", len(long))
	}
}

func TestEntryName(t *testing.T) {
	for name, want := range map[string]string{
		"a/b": "a/b", "./a//b/": "a/b", "/abs/x": "abs/x", "/../x": "x", ".": "", "/": "", "a/../b": "b",
		"../x": "!", "a/../../x": "!", "..": "!", "../": "!",
	} {
		got, err := EntryName(name)
		if err != nil {
			got = "!"
			if !errors.Is(err, ErrEscape) {
				t.Errorf("EntryName(%q): %v", name, err)
			}
		}
		if got != want {
			t.Errorf("EntryName(%q) = %q, want %q", name, got, want)
		}
	}
}
