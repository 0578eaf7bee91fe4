//go:build linux

package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfig is the conformance suite of Config: config.json's build and
// gc objects, and the environment over them.
func TestConfig(t *testing.T) {
	s := openTemp(t)
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(s.Root(), "config.json"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if c, err := s.Config().Build(); err != nil || c != (BuildConfig{}) {
		t.Errorf("no config.json: %+v, %v", c, err)
	}
	write(`{"build": {"pidsLimit": 4096, "memoryLimit": "4GB", "maxArchiveSize": "10GB"}}`)
	c, err := s.Config().Build()
	if err != nil || c.PidsLimit != 4096 || c.MemoryLimit != 4<<30 || c.MaxArchiveSize != 10<<30 {
		t.Errorf("Build = %+v, %v", c, err)
	}
	if n, err := s.Config().ArchiveLimit(c); err != nil || n != 10<<30 {
		t.Errorf("ArchiveLimit with a maximum = %d, %v", n, err)
	}
	if n, err := s.Config().ArchiveLimit(BuildConfig{}); err != nil || n <= 0 {
		t.Errorf("ArchiveLimit from free space = %d, %v", n, err)
	}
	for _, bad := range []string{`{"build": {"pidsLimit": -1}}`, `{"build": {"memoryLimit": "lots"}}`, `{"build": `} {
		write(bad)
		if _, err := s.Config().Build(); err == nil || !strings.Contains(err.Error(), "config.json") {
			t.Errorf("config %s: %v", bad, err)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for v, want := range map[string]time.Duration{"48h": 48 * time.Hour, "30m": 30 * time.Minute, "7d": 7 * 24 * time.Hour, "0.5d": 12 * time.Hour} {
		if d, err := ParseDuration(v); err != nil || d != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", v, d, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1h", "-2d"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
}

func TestGCConfig(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Config().GC()
	if err != nil || c != DefaultGCConfig {
		t.Fatalf("default config %+v, %v", c, err)
	}
	if p := c.Policies(100 << 30); p[0].Until != 48*time.Hour || p[1].KeepBytes != 10<<30 {
		t.Errorf("policies on a 100GB disk: %+v", p)
	}
	if p := c.Policies(1 << 40); p[1].KeepBytes != 20<<30 {
		t.Errorf("policies on a 1TB disk: %+v", p)
	}
	if p := c.Policies(4 << 30); p[1].KeepBytes != 2<<30 {
		t.Errorf("policies on a 4GB disk keep the reserved space: %+v", p)
	}
	os.WriteFile(filepath.Join(s.Root(), "config.json"), []byte(`{"gc":{"keepDuration":"7d","maxUsedSpace":"5GB"}}`), 0o644)
	t.Setenv("KILN_GC_RESERVED_SPACE", "1g")
	c, err = s.Config().GC()
	if err != nil {
		t.Fatal(err)
	}
	if c.KeepDuration != 7*24*time.Hour || c.MaxUsedSpace != 5<<30 || c.ReservedSpace != 1<<30 || !c.Enabled {
		t.Errorf("config %+v", c)
	}
	t.Setenv("KILN_GC", "0")
	if c, _ := s.Config().GC(); c.Enabled {
		t.Error("KILN_GC=0 did not disable GC")
	}
	for _, bad := range []string{"x", "-1GB", "GB"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

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
