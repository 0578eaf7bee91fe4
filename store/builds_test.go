//go:build linux

package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuilds is the conformance suite of Builds: step logs made on first
// use, and the last build's record by name, its summary written first.
func TestBuilds(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	b := s.Builds()

	logs := b.NewLogs()
	if other := b.NewLogs(); other.ID == logs.ID {
		t.Errorf("two builds share the log id %s", logs.ID)
	}
	if _, err := os.Stat(logs.Dir()); !os.IsNotExist(err) {
		t.Errorf("a build that logged nothing made %s: %v", logs.Dir(), err)
	}
	f, err := logs.Create("[1/2] RUN make")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("output\n")
	f.Close()
	if p := logs.Path("[1/2] RUN make"); filepath.Dir(p) != logs.Dir() || strings.ContainsAny(filepath.Base(p), "[] /") {
		t.Errorf("log path %s", p)
	}
	if got, err := b.logDirs(); err != nil || len(got) != 1 || got[0].ID != logs.ID {
		t.Errorf("logDirs = %v, %v", got, err)
	}

	var v map[string]int
	if err := b.ReadRecord(ctx, "app", &v); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadRecord of no build: %v", err)
	}
	if sum := b.RecordSum(ctx, "app"); sum != "" {
		t.Errorf("RecordSum of no build = %q", sum)
	}
	if err := b.WriteRecord(ctx, "app", "s1", map[string]int{"steps": 2}); err != nil {
		t.Fatal(err)
	}
	if err := b.ReadRecord(ctx, "app", &v); err != nil || v["steps"] != 2 {
		t.Errorf("ReadRecord = %v, %v", v, err)
	}
	if sum := b.RecordSum(ctx, "app"); sum != "s1" {
		t.Errorf("RecordSum = %q, want s1", sum)
	}
	if sum := b.RecordSum(ctx, "other"); sum != "" {
		t.Errorf("another build's RecordSum = %q", sum)
	}
}
