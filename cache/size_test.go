//go:build linux

package cache

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for v, want := range map[string]int64{
		"100": 100, "512MB": 512 << 20, "20GB": 20 << 30, "1.5g": 3 << 29, "2 GiB": 2 << 30, " 1TB ": 1 << 40, "4k": 4 << 10, "10b": 10,
	} {
		if n, err := ParseSize(v); err != nil || n != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", v, n, err, want)
		}
	}
	for _, bad := range []string{"x", "-1GB", "GB", "1XB", ""} {
		if _, err := ParseSize(bad); err == nil || !strings.Contains(err.Error(), "use e.g. 512MB, 20GB") {
			t.Errorf("ParseSize(%q): %v", bad, err)
		}
	}
}
