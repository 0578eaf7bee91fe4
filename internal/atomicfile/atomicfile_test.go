package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		o    Options
		perm os.FileMode
	}{
		{"beside", Options{}, 0o600},
		{"synced, 0644", Options{Sync: true, Perm: 0o644}, 0o644},
		{"temp elsewhere", Options{TempDir: t.TempDir()}, 0o600},
	} {
		p := filepath.Join(dir, "f")
		if err := WriteFile(p, tc.o, func(w io.Writer) error { _, err := io.WriteString(w, tc.name); return err }); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		b, err := os.ReadFile(p)
		if err != nil || string(b) != tc.name {
			t.Errorf("%s: read %q, %v", tc.name, b, err)
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != tc.perm {
			t.Errorf("%s: mode %v, want %v", tc.name, fi.Mode().Perm(), tc.perm)
		}
		if tc.o.TempDir != "" {
			assertOnly(t, tc.o.TempDir)
		}
	}
	assertOnly(t, dir, "f")
}

// A failed write leaves the old file as it was and no temporary file.
func TestWriteFileFails(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := WriteFile(p, Options{}, func(w io.Writer) error {
		io.WriteString(w, "half")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want boom", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Errorf("the old file became %q", b)
	}
	assertOnly(t, dir, "f")
	if err := WriteFile(filepath.Join(dir, "no", "such", "dir"), Options{}, func(io.Writer) error { return nil }); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
}

// Create is for writers that learn the name at the end: Close without
// Commit leaves nothing; Commit moves the file into place.
func TestCreate(t *testing.T) {
	tmp, dst := t.TempDir(), t.TempDir()
	if _, err := Create(Options{}); err == nil {
		t.Error("Create without a TempDir succeeded")
	}
	f, err := Create(Options{TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, "abandoned")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	assertOnly(t, tmp)
	f, err = Create(Options{TempDir: tmp, Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, "kept")
	if err := f.Commit(filepath.Join(dst, "name")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("Close after Commit: %v", err)
	}
	if err := f.Commit(filepath.Join(dst, "again")); err == nil {
		t.Error("a second Commit succeeded")
	}
	assertOnly(t, tmp)
	assertOnly(t, dst, "name")
	// A Commit that cannot rename removes the temporary file.
	f, _ = Create(Options{TempDir: tmp})
	if err := f.Commit(filepath.Join(dst, "missing", "name")); err == nil {
		t.Error("Commit into a missing directory succeeded")
	}
	assertOnly(t, tmp)
}

func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if len(got) != len(names) || (len(names) > 0 && got[0] != names[0]) {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}
