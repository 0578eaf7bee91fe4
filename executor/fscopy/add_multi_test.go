//go:build linux

package fscopy

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestAddSeveralSources is BuildKit's ADD with several sources: each local
// archive is extracted into dest, which need not end in "/" (wildcards
// matching archives too); a plain file among several sources needs a
// directory dest, or ADD's error.
func TestAddSeveralSources(t *testing.T) {
	needRoot(t, "extraction keeps owners")
	src := t.TempDir()
	for name, b := range map[string][]byte{
		"a.tar":     mkTar(t, fileE("from-a", "a")),
		"b.tar":     mkTar(t, fileE("from-b", "b")),
		"plain.txt": []byte("plain"),
		"x.tar.txt": []byte("not an archive"),
	} {
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		sources []string
		dest    string
		unpack  bool
		want    map[string]string // path under dest → content
		wantErr error
	}{
		{name: "two archives, no slash", sources: []string{"a.tar", "b.tar"}, dest: "/d", unpack: true, want: map[string]string{"from-a": "a", "from-b": "b"}},
		{name: "wildcard of archives, no slash", sources: []string{"?.tar"}, dest: "/d", unpack: true, want: map[string]string{"from-a": "a", "from-b": "b"}},
		{name: "archive and file, slash", sources: []string{"a.tar", "plain.txt"}, dest: "/d/", unpack: true, want: map[string]string{"from-a": "a", "plain.txt": "plain"}},
		{name: "archive and file, no slash", sources: []string{"a.tar", "plain.txt"}, dest: "/d", unpack: true, wantErr: ErrAddDestNotDir},
		{name: "archive and a file named like one", sources: []string{"a.tar", "x.tar.txt"}, dest: "/d", unpack: true, wantErr: ErrAddDestNotDir},
		{name: "COPY of two archives, no slash", sources: []string{"a.tar", "b.tar"}, dest: "/d", wantErr: ErrDestNotDir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			err := Copy(t.Context(), src, root, Options{Sources: tc.sources, Dest: tc.dest, Unpack: tc.unpack})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Copy = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for p, want := range tc.want {
				fileAt(t, filepath.Join(root, "d", p), want)
			}
		})
	}
}
